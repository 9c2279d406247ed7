//! Bodies with holes: rendered once per configuration with a marker where
//! each request value goes, then filled per request by copying the
//! literal pieces and the escaped values: straight into the output when
//! the pass-through codec writes the answer, into the body of hyper's
//! response otherwise.

/// A value a body leaves open.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Hole {
    /// The request id.
    RequestId,
    /// The decision id.
    DecisionId,
    /// The tenant's region.
    Region,
    /// A redirect's target.
    Target,
}

const HOLES: [Hole; 4] = [
    Hole::RequestId,
    Hole::DecisionId,
    Hole::Region,
    Hole::Target,
];

impl Hole {
    /// The marker a renderer writes for the hole: plain ASCII that no
    /// escaping changes.
    pub fn marker(self) -> &'static str {
        match self {
            Hole::RequestId => "@@portalgate-hole-request-id@@",
            Hole::DecisionId => "@@portalgate-hole-decision-id@@",
            Hole::Region => "@@portalgate-hole-region@@",
            Hole::Target => "@@portalgate-hole-target@@",
        }
    }
}

/// How values are escaped in a body.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Escape {
    /// Inside a JSON string.
    Json,
    /// HTML text and attribute values.
    Html,
    /// As they are.
    None,
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Piece {
    Text(Vec<u8>),
    Hole(Hole),
}

/// A body with holes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Template {
    pieces: Vec<Piece>,
    escape: Escape,
    /// The literal pieces' length, and how many holes of each kind (in
    /// the order of `HOLES`) there are: the filled length without a walk
    /// over the pieces.
    literal_len: usize,
    holes: [usize; 4],
}

/// The values of one request.
pub struct Values<'a> {
    /// The request id (ASCII: see `id::is_valid`).
    pub request_id: &'a [u8],
    /// The decision id.
    pub decision_id: &'a [u8],
    /// The region.
    pub region: &'a str,
    /// The redirect target.
    pub target: &'a str,
}

impl Template {
    /// Splits a rendered body at its markers.
    pub fn parse(body: &str, escape: Escape) -> Template {
        let mut pieces = Vec::new();
        let mut rest = body;
        loop {
            let next = HOLES
                .iter()
                .filter_map(|h| rest.find(h.marker()).map(|at| (at, *h)))
                .min_by_key(|(at, _)| *at);
            let Some((at, hole)) = next else { break };
            if at > 0 {
                pieces.push(Piece::Text(rest.as_bytes()[..at].to_vec()));
            }
            pieces.push(Piece::Hole(hole));
            rest = &rest[at + hole.marker().len()..];
        }
        if !rest.is_empty() {
            pieces.push(Piece::Text(rest.as_bytes().to_vec()));
        }
        let literal_len = pieces
            .iter()
            .map(|p| match p {
                Piece::Text(t) => t.len(),
                Piece::Hole(_) => 0,
            })
            .sum();
        let mut holes = [0; 4];
        for (n, hole) in holes.iter_mut().zip(HOLES) {
            *n = pieces.iter().filter(|p| **p == Piece::Hole(hole)).count();
        }
        Template {
            pieces,
            escape,
            literal_len,
            holes,
        }
    }

    /// The length of the filled body.
    pub fn filled_len(&self, values: &Values<'_>) -> usize {
        let [request_ids, decision_ids, regions, targets] = self.holes;
        let mut len = self.literal_len
            + request_ids * values.request_id.len()
            + decision_ids * values.decision_id.len();
        // Escaped lengths are worked out only for holes the body has.
        if regions > 0 {
            len += regions * escaped_len(values.region, self.escape);
        }
        if targets > 0 {
            len += targets * escaped_len(values.target, self.escape);
        }
        len
    }

    /// Appends the body with the holes filled.
    pub fn fill(&self, out: &mut Vec<u8>, values: &Values<'_>) {
        for piece in &self.pieces {
            match piece {
                Piece::Text(t) => out.extend_from_slice(t),
                // Ids are of characters no context escapes (see `id::is_valid`).
                Piece::Hole(Hole::RequestId) => out.extend_from_slice(values.request_id),
                Piece::Hole(Hole::DecisionId) => out.extend_from_slice(values.decision_id),
                Piece::Hole(Hole::Region) => escaped(out, values.region, self.escape),
                Piece::Hole(Hole::Target) => escaped(out, values.target, self.escape),
            }
        }
    }
}

/// The bytes no context escapes: copied into a body as they are.
static PLAIN: [bool; 256] = crate::canonical::byte_class(b"-_.:/+=~%?#@!$*,");

/// Whether `v` reads differently escaped `how`.
fn needs_escape(v: &str, how: Escape) -> bool {
    how != Escape::None && !v.bytes().all(|b| PLAIN[usize::from(b)])
}

/// The length of `v` escaped (escaped once more, off the common path,
/// when it has anything to escape).
fn escaped_len(v: &str, how: Escape) -> usize {
    if !needs_escape(v, how) {
        return v.len();
    }
    let mut out = Vec::new();
    escaped(&mut out, v, how);
    out.len()
}

fn escaped(out: &mut Vec<u8>, v: &str, how: Escape) {
    if !needs_escape(v, how) {
        out.extend_from_slice(v.as_bytes());
        return;
    }
    match how {
        Escape::Json => {
            // A JSON string's inside: the quoted form without its quotes.
            let quoted = serde_json::Value::from(v).to_string();
            out.extend_from_slice(&quoted.as_bytes()[1..quoted.len() - 1]);
        }
        Escape::Html => out.extend_from_slice(escape(v).as_bytes()),
        Escape::None => out.extend_from_slice(v.as_bytes()),
    }
}

/// Escapes text for HTML element content and attribute values.
pub fn escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn values() -> Values<'static> {
        Values {
            request_id: b"r1",
            decision_id: b"d1",
            region: "ger\"many",
            target: "https://x/?a=1&b=<2>",
        }
    }

    #[test]
    fn holes_are_filled_and_escaped_by_context() {
        let body = format!(
            "{{\"a\":\"{}\",\"r\":\"{}\",\"t\":\"{}\"}}",
            Hole::RequestId.marker(),
            Hole::Region.marker(),
            Hole::Target.marker()
        );
        let json = Template::parse(&body, Escape::Json);
        let mut out = Vec::new();
        json.fill(&mut out, &values());
        assert_eq!(json.filled_len(&values()), out.len());
        let v: serde_json::Value = serde_json::from_slice(&out).unwrap();
        assert_eq!(v["a"], "r1");
        assert_eq!(v["r"], "ger\"many");
        assert_eq!(v["t"], "https://x/?a=1&b=<2>");

        let html = format!(
            "<a href=\"{t}\">{t}</a>{}",
            Hole::DecisionId.marker(),
            t = Hole::Target.marker()
        );
        let mut out = Vec::new();
        let page = Template::parse(&html, Escape::Html);
        page.fill(&mut out, &values());
        assert_eq!(page.filled_len(&values()), out.len());
        assert_eq!(
            String::from_utf8(out).unwrap(),
            "<a href=\"https://x/?a=1&amp;b=&lt;2&gt;\">https://x/?a=1&amp;b=&lt;2&gt;</a>d1"
        );
    }

    #[test]
    fn a_body_without_holes_is_one_piece() {
        let t = Template::parse("plain", Escape::None);
        let mut out = Vec::new();
        t.fill(&mut out, &values());
        assert_eq!(out, b"plain");
    }
}
