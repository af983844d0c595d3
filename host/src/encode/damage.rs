//! Where two frames differ, tile by tile: the damage scan (all of the screen, or only where X Damage
//! saw drawing), the changed part of a tile, and the rectangle arithmetic around the tile grid.

use tether_shared::codec::TILE;
use tether_shared::frame::Frame;

use super::Rect;

pub(crate) fn full_rect(frame: &Frame) -> Rect {
    (0, 0, frame.width(), frame.height())
}

/// The tile grid clipped to the frame.
pub(crate) fn grid(frame: &Frame, (x0, y0, w, h): Rect) -> impl Iterator<Item = Rect> + '_ {
    let (fw, fh) = (frame.width(), frame.height());
    (y0..y0 + h).step_by(TILE as usize).flat_map(move |y| {
        (x0..x0 + w).step_by(TILE as usize).map(move |x| (x, y, TILE.min(fw - x), TILE.min(fh - y)))
    })
}

pub(crate) fn all_tiles(frame: &Frame) -> Vec<Rect> {
    grid(frame, full_rect(frame)).collect()
}

/// Tiles inside `area` (tile-aligned) whose pixels differ.
///
/// Rows first: one comparison per row of the area finds the rows that changed (an unchanged frame costs
/// just that pass, and a typed character a few rows), then only the tiles of bands with a changed row
/// are compared, and only on those rows.
pub(crate) fn damaged_tiles(prev: &Frame, cur: &Frame, area: Rect) -> Vec<Rect> {
    let (x0, y0, w, h) = area;
    let stride = cur.width() as usize * 4;
    let (start, len) = (x0 as usize * 4, w as usize * 4);
    let row_differs = |row: u32| {
        let i = row as usize * stride + start;
        prev.bgrx()[i..i + len] != cur.bgrx()[i..i + len]
    };
    let changed: Vec<u32> = (y0..y0 + h).filter(|&row| row_differs(row)).collect();
    if changed.is_empty() {
        return Vec::new();
    }
    let mut tiles = Vec::new();
    for band in changed.chunk_by(|a, b| a / TILE == b / TILE) {
        let (ty, rows) = (band[0] - band[0] % TILE, band);
        let th = TILE.min(cur.height() - ty);
        for (x, y, tw, th) in grid(cur, (x0, ty, w, th)) {
            let tile_differs = rows.iter().any(|&r| {
                let i = r as usize * stride + x as usize * 4;
                prev.bgrx()[i..i + tw as usize * 4] != cur.bgrx()[i..i + tw as usize * 4]
            });
            if tile_differs {
                tiles.push((x, y, tw, th));
            }
        }
    }
    tiles
}

/// Tiles touched by the rectangles `drawn` whose pixels differ, in grid order: the grid tiles they cover,
/// compared band by band over runs of neighbouring tiles.
pub(crate) fn damaged_in<'a>(prev: &Frame, cur: &Frame, drawn: impl Iterator<Item = &'a Rect>) -> Vec<Rect> {
    let (cols, rows) = (cur.width().div_ceil(TILE) as usize, cur.height().div_ceil(TILE) as usize);
    let mut touched = vec![false; cols * rows];
    let mut any = false;
    for &(x, y, w, h) in drawn {
        if w == 0 || h == 0 || x >= cur.width() || y >= cur.height() {
            continue;
        }
        let (x1, y1) = ((x + w).min(cur.width()), (y + h).min(cur.height()));
        for ty in (y / TILE) as usize..y1.div_ceil(TILE) as usize {
            touched[ty * cols + (x / TILE) as usize..ty * cols + x1.div_ceil(TILE) as usize].fill(true);
        }
        any = true;
    }
    if !any {
        return Vec::new();
    }
    let mut tiles = Vec::new();
    for (ty, band) in touched.chunks(cols).enumerate() {
        let mut col = 0;
        while col < cols {
            if !band[col] {
                col += 1;
                continue;
            }
            let start = col;
            while col < cols && band[col] {
                col += 1;
            }
            let (x0, y0) = (start as u32 * TILE, ty as u32 * TILE);
            let w = (col as u32 * TILE).min(cur.width()) - x0;
            let h = TILE.min(cur.height() - y0);
            tiles.extend(damaged_tiles(prev, cur, (x0, y0, w, h)));
        }
    }
    tiles
}

/// The smallest rectangle inside tile `t` holding every pixel that differs between `prev` and `cur`.
pub(crate) fn changed_part(prev: &Frame, cur: &Frame, (x, y, w, h): Rect) -> Rect {
    let rows: Vec<u32> = (y..y + h).filter(|&r| !prev.rect_eq(cur, x, r, w, 1)).collect();
    let (Some(&top), Some(&bottom)) = (rows.first(), rows.last()) else { return (x, y, w, h) };
    let stride = cur.width() as usize * 4;
    let column_differs = |c: u32| {
        (top..=bottom).any(|r| {
            let i = r as usize * stride + c as usize * 4;
            prev.bgrx()[i..i + 3] != cur.bgrx()[i..i + 3]
        })
    };
    let left = (x..x + w).find(|&c| column_differs(c)).unwrap_or(x);
    let right = (x..x + w).rev().find(|&c| column_differs(c)).unwrap_or(x + w - 1);
    (left, top, right - left + 1, bottom - top + 1)
}

/// Is rectangle `t` wholly inside `r`?
pub(crate) fn inside(t: Rect, r: Rect) -> bool {
    t.0 >= r.0 && t.1 >= r.1 && t.0 + t.2 <= r.0 + r.2 && t.1 + t.3 <= r.1 + r.3
}

pub(crate) fn bounding_box(tiles: &[Rect]) -> Rect {
    let x0 = tiles.iter().map(|t| t.0).min().unwrap_or(0);
    let y0 = tiles.iter().map(|t| t.1).min().unwrap_or(0);
    let x1 = tiles.iter().map(|t| t.0 + t.2).max().unwrap_or(0);
    let y1 = tiles.iter().map(|t| t.1 + t.3).max().unwrap_or(0);
    (x0, y0, x1 - x0, y1 - y0)
}
