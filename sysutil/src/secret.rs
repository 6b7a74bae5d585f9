//! [`Secret`]: a password, token or key seed in a config struct. It
//! (de)serializes as the plain string, but `Debug` (logs, panics, `{:?}`
//! of a whole config) shows only whether it is set, and there is no
//! `Display`: the one way to the text is [`Secret::expose`], at the call
//! that hands it to a client library.

use serde::{Deserialize, Serialize};

#[derive(Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(transparent)]
pub struct Secret(String);

impl Secret {
    /// The secret itself, for the client library that needs it.
    pub fn expose(&self) -> &str {
        &self.0
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

/// `""` when empty (so "no password" stays visible), `"<redacted>"`
/// otherwise.
impl std::fmt::Debug for Secret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        if self.0.is_empty() {
            f.write_str("\"\"")
        } else {
            f.write_str("\"<redacted>\"")
        }
    }
}

impl From<&str> for Secret {
    fn from(s: &str) -> Secret {
        Secret(s.to_string())
    }
}

impl From<String> for Secret {
    fn from(s: String) -> Secret {
        Secret(s)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn debug_hides_serde_keeps() {
        let s = Secret::from("007");
        assert_eq!(
            format!("{s:?} {:?}", Secret::default()),
            "\"<redacted>\" \"\""
        );
        assert_eq!(serde_json::to_string(&s).unwrap(), "\"007\"");
        let back: Secret = serde_json::from_str("\"007\"").unwrap();
        assert_eq!(back.expose(), "007");
    }
}
