//! Integers in request bodies as JSON Schema (and so the OpenAPI document)
//! defines them: any number without a fractional part, `8402.0` being the
//! integer 8402, and within the range the document states: seqs and ids
//! from 0 or 1 up to 2^63 − 1, whatever Rust type holds them.

use std::fmt;

use serde::de::{self, Deserializer, Visitor};

const SEQ: Integral = Integral {
    min: 0,
    max: i64::MAX as i128,
    from_text: false,
};

/// A seq: 0 to 2^63 − 1.
pub fn seq<'de, D: Deserializer<'de>>(deserializer: D) -> Result<u64, D::Error> {
    Ok(deserializer.deserialize_any(SEQ)? as u64)
}

/// A seq in a query string, where every value is text.
pub fn optional_query_seq<'de, D: Deserializer<'de>>(
    deserializer: D,
) -> Result<Option<u64>, D::Error> {
    let text = Integral {
        from_text: true,
        ..SEQ
    };
    Ok(Some(deserializer.deserialize_any(text)? as u64))
}

/// An optional seq (`null` or absent: none).
pub fn optional_seq<'de, D: Deserializer<'de>>(deserializer: D) -> Result<Option<u64>, D::Error> {
    struct Optional;
    impl<'de> Visitor<'de> for Optional {
        type Value = Option<u64>;
        fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
            f.write_str("a seq or null")
        }
        fn visit_none<E: de::Error>(self) -> Result<Self::Value, E> {
            Ok(None)
        }
        fn visit_unit<E: de::Error>(self) -> Result<Self::Value, E> {
            Ok(None)
        }
        fn visit_some<D: Deserializer<'de>>(self, d: D) -> Result<Self::Value, D::Error> {
            seq(d).map(Some)
        }
    }
    deserializer.deserialize_option(Optional)
}

/// An id: a 64-bit signed integer.
pub fn id<'de, D: Deserializer<'de>>(deserializer: D) -> Result<i64, D::Error> {
    let value = deserializer.deserialize_any(Integral {
        max: i64::MAX as i128,
        min: i64::MIN as i128,
        from_text: false,
    })?;
    Ok(value as i64)
}

#[derive(Clone, Copy)]
struct Integral {
    min: i128,
    max: i128,
    /// Digits in a string (query strings carry nothing else).
    from_text: bool,
}

impl Integral {
    fn check<E: de::Error>(&self, value: i128) -> Result<i128, E> {
        if value < self.min || value > self.max {
            return Err(E::custom(format!(
                "{value} is out of range ({} to {})",
                self.min, self.max
            )));
        }
        Ok(value)
    }
}

impl<'de> Visitor<'de> for Integral {
    type Value = i128;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        write!(f, "an integer from {} to {}", self.min, self.max)
    }

    fn visit_i64<E: de::Error>(self, value: i64) -> Result<i128, E> {
        self.check(value.into())
    }

    fn visit_u64<E: de::Error>(self, value: u64) -> Result<i128, E> {
        self.check(value.into())
    }

    fn visit_f64<E: de::Error>(self, value: f64) -> Result<i128, E> {
        // Beyond 2^63 an f64 is outside every range here anyway.
        if value.fract() != 0.0 || !value.is_finite() || value.abs() > 1e19 {
            return Err(E::invalid_type(de::Unexpected::Float(value), &self));
        }
        self.check(value as i128)
    }

    fn visit_str<E: de::Error>(self, text: &str) -> Result<i128, E> {
        match text.parse::<i128>() {
            Ok(value) if self.from_text => self.check(value),
            _ => Err(E::invalid_type(de::Unexpected::Str(text), &self)),
        }
    }
}

#[cfg(test)]
mod tests {
    use serde::Deserialize;

    #[derive(Debug, Deserialize)]
    struct Body {
        #[serde(deserialize_with = "super::seq")]
        seq: u64,
        #[serde(default, deserialize_with = "super::optional_seq")]
        reply_to: Option<u64>,
        #[serde(deserialize_with = "super::id")]
        id: i64,
    }

    fn parse(json: &str) -> Result<Body, serde_json::Error> {
        serde_json::from_str(json)
    }

    #[test]
    fn integral_numbers_are_integers_within_the_stated_range() {
        let body = parse(r#"{"seq": 8402.0, "reply_to": 3, "id": -7.0}"#).unwrap();
        assert_eq!((body.seq, body.reply_to, body.id), (8402, Some(3), -7));
        let body = parse(r#"{"seq": 9223372036854775807, "reply_to": null, "id": 1}"#).unwrap();
        assert_eq!((body.seq, body.reply_to), (i64::MAX as u64, None));
        assert_eq!(parse(r#"{"seq": 0, "id": 1}"#).unwrap().reply_to, None);
        for bad in [
            r#"{"seq": 1.5, "id": 1}"#,
            r#"{"seq": -1, "id": 1}"#,
            r#"{"seq": 9223372036854775808, "id": 1}"#,
            r#"{"seq": 1e300, "id": 1}"#,
            r#"{"seq": "1", "id": 1}"#,
            r#"{"seq": 1, "id": 1, "reply_to": 2.5}"#,
        ] {
            assert!(parse(bad).is_err(), "{bad} parsed");
        }
    }
}
