//! Errors written as text where they leave the crate's types (a failed tile's reason in the
//! store's records, a problem in a report): the causes are kept as one line, "what: why: root
//! cause", as `{:#}` prints an error chain at the command line.

use std::error::Error;

/// An error and all its sources, joined with ": ".
pub fn chain(error: &dyn Error) -> String {
    let mut text = error.to_string();
    let mut source = error.source();
    while let Some(cause) = source {
        let cause_text = cause.to_string();
        // A transparent wrapper repeats its source's text: say it once.
        if !text.ends_with(&cause_text) {
            text.push_str(": ");
            text.push_str(&cause_text);
        }
        source = cause.source();
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug, thiserror::Error)]
    #[error("reading tile x")]
    struct Outer(#[source] std::io::Error);

    #[test]
    fn joins_every_cause() {
        let e = Outer(std::io::Error::other("disk on fire"));
        assert_eq!(chain(&e), "reading tile x: disk on fire");
    }
}
