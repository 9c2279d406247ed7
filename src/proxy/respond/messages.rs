//! Built-in texts of explanations in English, German and French; a rule's
//! `messages` override the detail text per language.

/// A supported language.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Lang {
    /// English (the fallback).
    En,
    /// German.
    De,
    /// French.
    Fr,
}

impl Lang {
    /// The language tag.
    pub fn tag(self) -> &'static str {
        match self {
            Lang::En => "en",
            Lang::De => "de",
            Lang::Fr => "fr",
        }
    }
}

/// The language the client prefers by `Accept-Language` (q-values, prefix
/// match such as `de-DE` → `de`, `*`); English when nothing fits.
pub fn language(accept_language: Option<&str>) -> Lang {
    let Some(header) = accept_language else {
        return Lang::En;
    };
    // Highest q wins; the first listed wins a tie; q=0 means "not this one".
    let mut best: Option<(Lang, f32)> = None;
    for range in header.split(',') {
        let mut params = range.split(';');
        let tag = params.next().unwrap_or("").trim().to_ascii_lowercase();
        let q = params
            .filter_map(|p| p.trim().split_once('='))
            .find(|(k, _)| k.trim() == "q")
            .and_then(|(_, v)| v.trim().parse::<f32>().ok())
            .unwrap_or(1.0);
        let lang = match tag.split('-').next().unwrap_or("") {
            "en" | "*" => Lang::En,
            "de" => Lang::De,
            "fr" => Lang::Fr,
            _ => continue,
        };
        if q > 0.0 && best.is_none_or(|(_, bq)| q > bq) {
            best = Some((lang, q));
        }
    }
    best.map_or(Lang::En, |(lang, _)| lang)
}

/// The texts of one explanation.
pub struct Texts {
    /// Heading.
    pub title: String,
    /// One or two sentences: what is not available and where it is.
    pub detail: String,
}

/// Labels used around the texts.
pub struct Labels {
    /// "Documentation"
    pub docs: &'static str,
    /// "Go to"
    pub go_to: &'static str,
    /// "Request id"
    pub request_id: &'static str,
    /// "Decision id"
    pub decision_id: &'static str,
    /// "You are being redirected to"
    pub redirected: &'static str,
}

/// Labels in `lang`.
pub fn labels(lang: Lang) -> Labels {
    match lang {
        Lang::En => Labels {
            docs: "Documentation",
            go_to: "Go to",
            request_id: "Request id",
            decision_id: "Decision id",
            redirected: "This page has moved to",
        },
        Lang::De => Labels {
            docs: "Dokumentation",
            go_to: "Weiter zu",
            request_id: "Anfrage-ID",
            decision_id: "Entscheidungs-ID",
            redirected: "Diese Seite befindet sich jetzt im",
        },
        Lang::Fr => Labels {
            docs: "Documentation",
            go_to: "Aller à",
            request_id: "ID de requête",
            decision_id: "ID de décision",
            redirected: "Cette page se trouve désormais dans",
        },
    }
}

/// Joins portal names: "A or B" / "A oder B" / "A ou B".
fn join(portals: &[&str], lang: Lang) -> String {
    let or = match lang {
        Lang::En => " or ",
        Lang::De => " oder ",
        Lang::Fr => " ou ",
    };
    portals.join(or)
}

/// The texts for `feature`, naming `portals`; `override_detail` replaces
/// the built-in detail (`{portals}` in it is replaced too).
pub fn texts(feature: &str, portals: &[&str], lang: Lang, override_detail: Option<&str>) -> Texts {
    let p = join(portals, lang);
    let (title, detail) = match (feature, lang) {
        ("customer-user-management", Lang::En) => (
            "Customer user management is not available here",
            "For tenants in Microsoft Cloud Germany, customer users are not managed in Partner Center. Manage them in {portals}.",
        ),
        ("customer-user-management", Lang::De) => (
            "Die Benutzerverwaltung für Kunden ist hier nicht verfügbar",
            "Für Mandanten in Microsoft Cloud Deutschland werden Kundenbenutzer nicht im Partner Center verwaltet. Verwalten Sie sie im {portals}.",
        ),
        ("customer-user-management", Lang::Fr) => (
            "La gestion des utilisateurs du client n'est pas disponible ici",
            "Pour les locataires de Microsoft Cloud Germany, les utilisateurs du client ne sont pas gérés dans l'Espace partenaires. Gérez-les dans {portals}.",
        ),
        ("partner-user-management", Lang::En) => (
            "Partner user management is not available here",
            "For partners in Microsoft Cloud Germany, partner users are not managed in Partner Center. Manage them in {portals}.",
        ),
        ("partner-user-management", Lang::De) => (
            "Die Verwaltung von Partnerbenutzern ist hier nicht verfügbar",
            "Für Partner in Microsoft Cloud Deutschland werden Partnerbenutzer nicht im Partner Center verwaltet. Verwalten Sie sie im {portals}.",
        ),
        ("partner-user-management", Lang::Fr) => (
            "La gestion des utilisateurs partenaires n'est pas disponible ici",
            "Pour les partenaires de Microsoft Cloud Germany, les utilisateurs partenaires ne sont pas gérés dans l'Espace partenaires. Gérez-les dans {portals}.",
        ),
        ("password-reset", Lang::En) => (
            "Password reset is not available here",
            "For tenants in Microsoft Cloud Germany, reset user passwords in {portals}.",
        ),
        ("password-reset", Lang::De) => (
            "Das Zurücksetzen von Kennwörtern ist hier nicht verfügbar",
            "Für Mandanten in Microsoft Cloud Deutschland setzen Sie Kennwörter im {portals} zurück.",
        ),
        ("password-reset", Lang::Fr) => (
            "La réinitialisation du mot de passe n'est pas disponible ici",
            "Pour les locataires de Microsoft Cloud Germany, réinitialisez les mots de passe dans {portals}.",
        ),
        ("license-management", Lang::En) => (
            "License management is not available here",
            "For tenants in Microsoft Cloud Germany, assign and manage licenses in {portals}.",
        ),
        ("license-management", Lang::De) => (
            "Die Lizenzverwaltung ist hier nicht verfügbar",
            "Für Mandanten in Microsoft Cloud Deutschland weisen Sie Lizenzen im {portals} zu und verwalten sie dort.",
        ),
        ("license-management", Lang::Fr) => (
            "La gestion des licences n'est pas disponible ici",
            "Pour les locataires de Microsoft Cloud Germany, attribuez et gérez les licences dans {portals}.",
        ),
        (_, Lang::En) => ("This feature is not available here", "Use {portals} instead."),
        (_, Lang::De) => ("Diese Funktion ist hier nicht verfügbar", "Verwenden Sie stattdessen {portals}."),
        (_, Lang::Fr) => ("Cette fonctionnalité n'est pas disponible ici", "Utilisez plutôt {portals}."),
    };
    Texts {
        title: title.to_string(),
        detail: override_detail.unwrap_or(detail).replace("{portals}", &p),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn language_by_q_value_and_prefix() {
        assert_eq!(language(None), Lang::En);
        assert_eq!(language(Some("de")), Lang::De);
        assert_eq!(language(Some("de-DE,de;q=0.9,en;q=0.8")), Lang::De);
        assert_eq!(language(Some("en;q=0.5, fr;q=0.9")), Lang::Fr);
        assert_eq!(language(Some("es, fr;q=0.1")), Lang::Fr);
        assert_eq!(language(Some("es, it")), Lang::En);
        assert_eq!(language(Some("de;q=0")), Lang::En);
        assert_eq!(language(Some("*")), Lang::En);
    }

    #[test]
    fn every_feature_has_texts_in_every_language() {
        for f in [
            "customer-user-management",
            "partner-user-management",
            "password-reset",
            "license-management",
        ] {
            for lang in [Lang::En, Lang::De, Lang::Fr] {
                let t = texts(f, &["Portal A", "Portal B"], lang, None);
                assert!(
                    t.detail.contains("Portal A") && t.detail.contains("Portal B"),
                    "{f} {lang:?}"
                );
                assert!(!t.detail.contains("{portals}"));
            }
        }
        let t = texts(
            "password-reset",
            &["Azure"],
            Lang::De,
            Some("Bitte {portals} nutzen."),
        );
        assert_eq!(t.detail, "Bitte Azure nutzen.");
    }
}
