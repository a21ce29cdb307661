//! Error text for people: an error with every cause behind it, because
//! the HTTP and TLS stacks' own messages say little without them.

/// `error: cause: cause...`, skipping a cause whose text the message
/// already ends with (wrappers often repeat it).
pub(crate) fn chain(e: &(dyn std::error::Error + 'static)) -> String {
    let mut text = e.to_string();
    let mut next = e.source();
    while let Some(cause) = next {
        let cause_text = cause.to_string();
        if !text.ends_with(&cause_text) {
            text.push_str(": ");
            text.push_str(&cause_text);
        }
        next = cause.source();
    }
    text
}
