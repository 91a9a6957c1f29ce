//! Masking shows a value's shape without its content (`j***@example.com`, `+44 ***** **123`).

/// First character of the local part, then `***`, then the domain.
pub fn email(value: &str) -> String {
    match value.rsplit_once('@') {
        Some((local, domain)) => {
            let first: String = local.chars().take(1).collect();
            format!("{first}***@{domain}")
        }
        None => generic(value),
    }
}

/// Keeps a leading `+` with a two-digit country code (for numbers of 9+ digits) and the last three
/// digits (for numbers of 7+ digits); every other digit, and anything that is not a separator, becomes
/// `*`. Short numbers are masked whole: keeping five of six digits would reveal the number.
pub fn phone(value: &str) -> String {
    let digits = value.chars().filter(char::is_ascii_digit).count();
    let keep_tail = if digits >= 7 { 3 } else { 0 };
    let keep_head = if digits >= 9 && value.trim_start().starts_with('+') {
        2
    } else {
        0
    };
    let mut seen = 0usize;
    value
        .chars()
        .map(|c| {
            if c.is_ascii_digit() {
                seen += 1;
                if seen <= keep_head || seen > digits - keep_tail {
                    c
                } else {
                    '*'
                }
            } else if is_phone_separator(c) {
                c
            } else {
                '*'
            }
        })
        .collect()
}

/// Characters a phone number may hold besides digits.
pub fn is_phone_separator(c: char) -> bool {
    matches!(c, ' ' | '+' | '-' | '(' | ')' | '.')
}

/// Initial of each word followed by `***` (`Ada Lovelace` → `A*** L***`).
pub fn name(value: &str) -> String {
    value
        .split_whitespace()
        .map(|w| format!("{}***", w.chars().take(1).collect::<String>()))
        .collect::<Vec<_>>()
        .join(" ")
}

/// Reveals nothing but that a value exists.
pub fn generic(_value: &str) -> String {
    "***".to_owned()
}

/// The mask for a field of a record of `kind`. The partial masks are for a contact's own name,
/// email and phone; any other field, a file's name included, reveals nothing.
pub fn field(kind: &str, field: &str, value: &str) -> String {
    match (kind, field) {
        ("contact", "email") => email(value),
        ("contact", "phone") => phone(value),
        ("contact", "name") => name(value),
        _ => generic(value),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shapes() {
        assert_eq!(email("jane.doe@example.com"), "j***@example.com");
        assert_eq!(phone("+44 20794 60123"), "+44 ***** **123");
        assert_eq!(phone("555-0100"), "***-*100");
        assert_eq!(phone("+44 123"), "+** ***");
        assert_eq!(phone("ask for Maria"), "*** *** *****");
        assert_eq!(name("Ada Lovelace"), "A*** L***");
        assert_eq!(field("contact", "notes", "secret"), "***");
        assert_eq!(field("contact", "name", "Jane Doe"), "J*** D***");
        assert_eq!(field("attachment", "name", "Jane Doe passport.pdf"), "***");
    }
}
