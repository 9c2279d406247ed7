//! One-line descriptions of rules, for `check` and the admin `/config`.

impl super::rule::Matcher {
    /// One line for rule tables: methods, path and conditions.
    pub fn describe(&self) -> String {
        let m = self;
        use super::pattern::PathPattern;
        let methods = if m.methods.is_empty() {
            "*".to_string()
        } else {
            m.methods
                .iter()
                .map(|x| x.as_str())
                .collect::<Vec<_>>()
                .join(",")
        };
        let path = match &m.path {
            None => "/**".to_string(),
            Some(PathPattern::Template { template, .. }) => template.clone(),
            Some(PathPattern::Regex(r)) => format!("~{r}"),
        };
        let mut s = format!("{methods} {path}");
        if !m.regions.is_empty() {
            let regions: Vec<&str> = m.regions.iter().map(|r| r.as_str()).collect();
            s.push_str(&format!(" region={}", regions.join(",")));
        }
        if !m.hosts.is_empty() {
            s.push_str(&format!(" host={}", m.hosts.join(",")));
        }
        if let Some(b) = &m.body {
            s.push_str(&format!(" body.{}", b.json_field_present.join(".")));
        }
        if !m.headers.is_empty() {
            s.push_str(&format!(" +{} header cond.", m.headers.len()));
        }
        s
    }
}

impl super::action::Action {
    /// One line for rule tables.
    pub fn describe(&self) -> String {
        use super::action::Action;
        match self {
            Action::Allow => "allow".into(),
            Action::Deny { status } => format!("deny {}", status.as_u16()),
            Action::Redirect { location, .. } => format!("redirect {location}"),
            Action::Explain {
                feature, portals, ..
            } => {
                let p: Vec<&str> = portals.iter().map(|p| p.key.as_str()).collect();
                format!("explain {feature} -> {}", p.join(", "))
            }
        }
    }
}
