//! The SQLSTATE of an error message, from its wording, for logs whose `log_line_prefix` has no
//! `%e` (csvlog, jsonlog and `%e` say it themselves). The table is PostgreSQL's own: each
//! `errmsg(...)` format next to its `errcode(...)` in the server's sources, read by
//! `fixtures/pg/sqlstate/gen_table.py` into `sqlstate_table.rs`; a wording the sources write
//! with different codes is not in it, so a code is never guessed. Errors are rare lines: a scan
//! of the table per error is cheap.

include!("sqlstate_table.rs");

/// The SQLSTATE PostgreSQL writes with this message, when its wording tells.
pub fn infer(message: &str) -> Option<&'static str> {
    let text = without_position(super::record::first_line(message));
    MESSAGE_SQLSTATES
        .iter()
        .find(|(pieces, ..)| matches_format(text, pieces))
        .map(|(_, code, ..)| *code)
}

/// The name errcodes.txt gives a class (`23` → `Integrity Constraint Violation`).
pub fn class_name(class: &str) -> Option<&'static str> {
    SQLSTATE_CLASSES
        .iter()
        .find(|(c, _)| *c == class)
        .map(|(_, name)| *name)
}

/// stderr and syslog append the error's cursor position: `... does not exist at character 28`.
fn without_position(text: &str) -> &str {
    if let Some(at) = text.rfind(" at character ")
        && text[at + 14..].bytes().all(|b| b.is_ascii_digit())
        && at + 14 < text.len()
    {
        return &text[..at];
    }
    text
}

/// True when `text` is the format whose literal `pieces` are given: the first at the start,
/// the last at the end, the others in order between, and something where each conversion was.
fn matches_format(text: &str, pieces: &[&str]) -> bool {
    let [first, middle @ .., last] = pieces else {
        return pieces.first() == Some(&text);
    };
    let Some(mut rest) = text.strip_prefix(first) else {
        return false;
    };
    let Some(end) = rest.len().checked_sub(last.len()) else {
        return false;
    };
    if !rest.ends_with(last) {
        return false;
    }
    rest = &rest[..end];
    for piece in middle {
        // a conversion fills at least one character before the piece
        let filled = rest.chars().next().map_or(0, char::len_utf8);
        if filled == 0 {
            return false;
        }
        match rest[filled..].find(piece) {
            Some(at) => rest = &rest[filled + at + piece.len()..],
            None => return false,
        }
    }
    !rest.is_empty()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_common_wordings_get_postgresqls_codes() {
        for (message, code) in [
            (
                "duplicate key value violates unique constraint \"app_book_isbn_key\"",
                Some("23505"),
            ),
            (
                "insert or update on table \"app_order\" violates foreign key constraint \"app_order_book_id_fk\"",
                Some("23503"),
            ),
            (
                "null value in column \"title\" of relation \"app_book\" violates not-null constraint",
                Some("23502"),
            ),
            ("division by zero", Some("22012")),
            ("integer out of range", Some("22003")),
            (
                "relation \"app_review\" does not exist at character 28",
                Some("42P01"),
            ),
            (
                "syntax error at or near \"SELEC\" at character 1",
                Some("42601"),
            ),
            ("syntax error at end of input", Some("42601")),
            (
                "no pg_hba.conf entry for host \"10.0.0.5\", user \"app\", database \"shop\", no encryption",
                Some("28000"),
            ),
            (
                "password authentication failed for user \"app\"",
                Some("28P01"),
            ),
            ("sorry, too many clients already", Some("53300")),
            (
                "could not serialize access due to concurrent update",
                Some("40001"),
            ),
            (
                "terminating connection due to idle-in-transaction timeout",
                Some("25P03"),
            ),
            ("permission denied for table app_book", Some("42501")),
            // written with several codes in the sources: not guessed
            ("role \"nobody\" does not exist", None),
            ("invalid input syntax for type integer: \"x\"", None),
            // a prefix of a known wording is not it
            ("division by zero is fun", None),
            ("relation \"\" does not exist", None),
            (
                "insert or update on table \"é\" violates foreign key constraint \"ç_fk\"",
                Some("23503"),
            ),
        ] {
            assert_eq!(infer(message), code, "{message}");
        }
    }

    #[test]
    fn classes_have_errcodes_names() {
        assert_eq!(class_name("23"), Some("Integrity Constraint Violation"));
        assert_eq!(class_name("40"), Some("Transaction Rollback"));
        assert_eq!(class_name("zz"), None);
    }
}
