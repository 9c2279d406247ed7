//! Content negotiation by `Accept` with q-values (RFC 9110 §12.5.1).

/// The formats the proxy can render a local response in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    /// `application/problem+json` (RFC 9457).
    Json,
    /// A self-contained HTML page.
    Html,
    /// `text/plain`.
    Text,
}

/// The client's quality for a media type, from the most specific matching
/// range in `accept`; 1.0 when there is no `Accept` header.
pub fn quality(accept: Option<&str>, media: &str) -> f32 {
    let Some(accept) = accept else { return 1.0 };
    let (mtype, msub) = media.split_once('/').unwrap_or((media, ""));
    let mut best: Option<(u8, f32)> = None;
    for range in accept.split(',') {
        let mut params = range.split(';');
        let name = params.next().unwrap_or("").trim();
        let (rtype, rsub) = name.split_once('/').unwrap_or((name, ""));
        let specificity = if rtype.eq_ignore_ascii_case(mtype) && rsub.eq_ignore_ascii_case(msub) {
            3
        } else if rtype.eq_ignore_ascii_case(mtype) && rsub == "*" {
            2
        } else if rtype == "*" && rsub == "*" {
            1
        } else {
            continue;
        };
        let q = params
            .filter_map(|p| p.trim().split_once('='))
            .find(|(k, _)| k.trim().eq_ignore_ascii_case("q"))
            .and_then(|(_, v)| v.trim().parse::<f32>().ok())
            .map_or(1.0, |q| q.clamp(0.0, 1.0));
        if best.is_none_or(|(s, _)| specificity > s) {
            best = Some((specificity, q));
        }
    }
    best.map_or(0.0, |(_, q)| q)
}

/// Picks the format the client prefers; ties go to JSON, then HTML.
pub fn negotiate(accept: Option<&str>) -> Format {
    let json = quality(accept, "application/json").max(quality(accept, "application/problem+json"));
    let html = quality(accept, "text/html");
    let text = quality(accept, "text/plain");
    if json >= html && json >= text && json > 0.0 {
        Format::Json
    } else if html >= text && html > 0.0 {
        Format::Html
    } else if text > 0.0 {
        Format::Text
    } else {
        Format::Json
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn picks_by_q_value() {
        assert_eq!(negotiate(None), Format::Json);
        assert_eq!(negotiate(Some("*/*")), Format::Json);
        assert_eq!(negotiate(Some("application/json")), Format::Json);
        assert_eq!(
            negotiate(Some(
                "text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8"
            )),
            Format::Html
        );
        assert_eq!(
            negotiate(Some("text/plain, application/json;q=0.5")),
            Format::Text
        );
        assert_eq!(
            negotiate(Some("text/*;q=0.9, application/json;q=0.1")),
            Format::Html
        );
        assert_eq!(negotiate(Some("image/png")), Format::Json);
        assert_eq!(
            negotiate(Some("application/json;q=0, text/html")),
            Format::Html
        );
    }

    #[test]
    fn most_specific_range_wins() {
        assert_eq!(
            quality(Some("text/*;q=0.2, text/html;q=0.7"), "text/html"),
            0.7
        );
        assert_eq!(quality(Some("*/*;q=0.1"), "text/html"), 0.1);
        assert_eq!(quality(Some("text/html;level=1;q=0.4"), "text/html"), 0.4);
    }
}
