//! The code as the technician types it: digits only, grouped `NNN-SSS-SSSS` as they go, so what is on
//! screen reads like what the user reads aloud. Longer nameplates (a crowded relay) keep the last seven
//! digits as the secret, as `Code::parse` does.

use tether_shared::code::SECRET_DIGITS;

/// Regroup whatever was typed or pasted: keep the digits, put the dashes where they belong.
pub fn format_code_input(text: &str) -> String {
    let digits: String = text.chars().filter(char::is_ascii_digit).take(16).collect();
    let n = digits.len();
    let nameplate = if n > 3 + SECRET_DIGITS { n - SECRET_DIGITS } else { 3 };
    let mut out = String::with_capacity(n + 2);
    for (i, c) in digits.chars().enumerate() {
        if i == nameplate || (i == nameplate + 3 && n > nameplate + 3) {
            out.push('-');
        }
        out.push(c);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::format_code_input as f;

    #[test]
    fn groups_as_you_type() {
        assert_eq!(f("4"), "4");
        assert_eq!(f("482"), "482");
        assert_eq!(f("4829"), "482-9");
        assert_eq!(f("482913"), "482-913");
        assert_eq!(f("4829135"), "482-913-5");
        assert_eq!(f("4829135071"), "482-913-5071");
        assert_eq!(f("482 913 5071"), "482-913-5071");
        assert_eq!(f("482-913-5071x"), "482-913-5071");
        // A four-digit nameplate: the secret is still the last seven digits.
        assert_eq!(f("12345678901"), "1234-567-8901");
    }

    #[test]
    fn what_it_shows_parses_to_the_same_code() {
        let code = tether_shared::code::Code::parse("482-913-5071").expect("valid");
        assert_eq!(f(&code.to_string()), code.to_string());
        assert!(tether_shared::code::Code::parse(&f("4829135071")).is_ok());
    }
}
