//! What a matching rule does: plain data built by `config`, rendered by the
//! proxy.

use std::collections::BTreeMap;

use http::StatusCode;

/// A portal where the blocked feature is available instead.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Portal {
    /// The key it is configured under, e.g. `azure-germany`.
    pub key: String,
    /// Display name, e.g. "Azure portal (Microsoft Cloud Germany)".
    pub name: String,
    /// Its address.
    pub url: String,
}

/// A documentation link.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DocLink {
    /// Link text.
    pub title: String,
    /// Its address.
    pub url: String,
}

/// The JSON flavour of an explanation for API clients.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum JsonFormat {
    /// RFC 9457 `application/problem+json`.
    Problem,
    /// Partner Center's own error body `{code, description, data, source}`.
    PartnerCenter,
}

/// What a rule does when it matches.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Action {
    /// Forward the request (an explicit exception before later rules).
    Allow,
    /// Answer with this status and a short body.
    Deny {
        /// The status.
        status: StatusCode,
    },
    /// Redirect to `location` (placeholders `{name}` are path captures and
    /// `{tenant}`); with no fixed status, 303 for GET/HEAD/POST and 307 for
    /// other methods, so the method is kept where it must be.
    Redirect {
        /// The target, templated.
        location: String,
        /// A fixed status (301, 302, 303, 307 or 308).
        status: Option<StatusCode>,
        /// The portal the target belongs to, for logs.
        portal: Option<Portal>,
    },
    /// Explain why the feature is not available here and where it is.
    Explain {
        /// The feature's message key, e.g. `customer-user-management`.
        feature: String,
        /// Where the feature is available instead.
        portals: Vec<Portal>,
        /// Documentation links.
        docs: Vec<DocLink>,
        /// JSON flavour for API clients.
        json: JsonFormat,
        /// The status (default 403).
        status: StatusCode,
        /// Message overrides by language (`en`, `de`, `fr`).
        messages: BTreeMap<String, String>,
    },
}

impl Action {
    /// A stable name for logs and tools.
    pub fn kind(&self) -> &'static str {
        match self {
            Action::Allow => "allow",
            Action::Deny { .. } => "deny",
            Action::Redirect { .. } => "redirect",
            Action::Explain { .. } => "explain",
        }
    }
}
