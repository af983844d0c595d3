//! The machine as its firmware describes it: the DMI tables Linux exposes in sysfs
//! (`/sys/class/dmi/id`), readable without root except the serial numbers on most machines.

use std::path::Path;

use tether_shared::inventory::{Hardware, Readable};

/// Where Linux puts the DMI fields.
pub const DMI: &str = "/sys/class/dmi/id";

/// The hardware from the DMI fields in `dir`; why not, when the firmware gives none (a container, some
/// virtual machines, most ARM boards).
pub fn read(dir: &Path) -> Readable<Hardware> {
    let field = |name: &str| {
        std::fs::read_to_string(dir.join(name)).ok().map(|s| s.trim().to_owned()).filter(|s| !s.is_empty())
    };
    let Some(vendor) = field("sys_vendor") else {
        return Readable::Unreadable(format!(
            "the firmware gives no DMI tables here ({} is missing)",
            dir.display()
        ));
    };
    let firmware = [field("bios_vendor"), field("bios_version"), field("bios_date")]
        .into_iter()
        .flatten()
        .collect::<Vec<_>>()
        .join(" ");
    Readable::Read(Hardware {
        vendor,
        model: [field("product_name"), field("product_version")]
            .into_iter()
            .flatten()
            .collect::<Vec<_>>()
            .join(" "),
        serial: field("product_serial"),
        firmware,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dmi_fields_make_the_hardware_and_a_missing_table_says_so() {
        let dir = tempfile::tempdir().expect("temp dir");
        assert!(matches!(read(dir.path()), Readable::Unreadable(why) if why.contains("no DMI")));
        for (name, value) in [
            ("sys_vendor", "LENOVO\n"),
            ("product_name", "20XW0026GE\n"),
            ("product_version", "ThinkPad X1 Carbon Gen 9\n"),
            ("bios_vendor", "LENOVO\n"),
            ("bios_version", "N32ET75W (1.51 )\n"),
            ("bios_date", "09/26/2022\n"),
        ] {
            std::fs::write(dir.path().join(name), value).expect("write");
        }
        let Readable::Read(hw) = read(dir.path()) else { panic!("reads") };
        assert_eq!(hw.vendor, "LENOVO");
        assert_eq!(hw.model, "20XW0026GE ThinkPad X1 Carbon Gen 9");
        assert_eq!(hw.serial, None, "root only");
        assert_eq!(hw.firmware, "LENOVO N32ET75W (1.51 ) 09/26/2022");
    }
}
