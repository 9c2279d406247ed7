//! Bodies with holes: rendered once per configuration with a marker where
//! each request value goes, then filled per request by copying the
//! literal pieces and the escaped values.

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
        Template { pieces, escape }
    }

    /// Appends the body with the holes filled.
    /// The length of the filled body when nothing needs escaping (the
    /// capacity to reserve for it).
    pub fn len_hint(&self, values: &Values<'_>) -> usize {
        self.pieces
            .iter()
            .map(|piece| match piece {
                Piece::Text(t) => t.len(),
                Piece::Hole(Hole::RequestId) => values.request_id.len(),
                Piece::Hole(Hole::DecisionId) => values.decision_id.len(),
                Piece::Hole(Hole::Region) => values.region.len(),
                Piece::Hole(Hole::Target) => values.target.len(),
            })
            .sum()
    }

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

fn escaped(out: &mut Vec<u8>, v: &str, escape: Escape) {
    let plain = |b: u8| PLAIN[usize::from(b)];
    if escape == Escape::None || v.bytes().all(plain) {
        out.extend_from_slice(v.as_bytes());
        return;
    }
    match escape {
        Escape::Json => {
            // A JSON string's inside: the quoted form without its quotes.
            let quoted = serde_json::Value::from(v).to_string();
            out.extend_from_slice(&quoted.as_bytes()[1..quoted.len() - 1]);
        }
        Escape::Html => out.extend_from_slice(super::escape(v).as_bytes()),
        Escape::None => out.extend_from_slice(v.as_bytes()),
    }
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
        let mut out = Vec::new();
        Template::parse(&body, Escape::Json).fill(&mut out, &values());
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
        Template::parse(&html, Escape::Html).fill(&mut out, &values());
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
