//! A setting with a fixed set of values (a serde enum), read so that an
//! unknown value does not stop the reading of the rest of the file: the
//! value is kept with its problem, and validation reports it beside every
//! other mistake, naming the key and the accepted values. It must never let
//! an unknown value through as if it were one of the accepted ones.

use serde::de::{value::StrDeserializer, DeserializeOwned, Deserializer};
use serde::Deserialize;

/// One of `T`'s values, or the word written and why it is none of them.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Choice<T> {
    /// An accepted value.
    Known(T),
    /// A word that is not one of `T`'s values: what is wrong, with the
    /// accepted values.
    Unknown(String),
}

impl<T: Copy> Choice<T> {
    /// The value, or what is wrong with the word written.
    pub fn checked(&self) -> Result<T, String> {
        match self {
            Choice::Known(value) => Ok(*value),
            Choice::Unknown(problem) => Err(problem.clone()),
        }
    }
}

impl<T> From<T> for Choice<T> {
    fn from(value: T) -> Self {
        Choice::Known(value)
    }
}

impl<'de, T: DeserializeOwned> Deserialize<'de> for Choice<T> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let word = String::deserialize(deserializer)?;
        let parsed = T::deserialize(StrDeserializer::<serde::de::value::Error>::new(&word));
        Ok(match parsed {
            Ok(value) => Choice::Known(value),
            Err(e) => {
                // serde says "unknown variant `x`, expected `a` or `b`".
                Choice::Unknown(e.to_string().replacen("unknown variant", "unknown value", 1))
            }
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Clone, Copy, Debug, PartialEq, Eq, Deserialize)]
    #[serde(rename_all = "snake_case")]
    enum Colour {
        Red,
        DarkBlue,
    }

    fn read(word: &str) -> Choice<Colour> {
        let json = serde_json::Value::String(word.to_owned());
        serde_json::from_value(json).expect("a string is always read")
    }

    #[test]
    fn a_known_word_is_its_value_and_an_unknown_one_lists_the_accepted_values() {
        assert_eq!(read("dark_blue").checked(), Ok(Colour::DarkBlue));
        let problem = read("green").checked().expect_err("green is not a colour here");
        assert!(
            problem.contains("`green`") && problem.contains("`red`") && problem.contains("`dark_blue`"),
            "{problem}"
        );
        assert!(problem.starts_with("unknown value"), "{problem}");
    }

    #[test]
    fn a_value_that_is_not_a_string_is_a_type_error() {
        assert!(serde_json::from_value::<Choice<Colour>>(serde_json::json!(3)).is_err());
    }
}
