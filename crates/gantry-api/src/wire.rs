//! Serde helpers for the quirks of the awsJson1_1 wire format.
//!
//! Integer members accept JSON numbers and, as ECS does on the raw wire, strings that hold an
//! integer (`"memory": "100"`); the value is normalised to a number. Anything else is a
//! deserialisation error, which the server reports as `SerializationException`.

use serde::de::{self, Deserializer, Visitor};
use std::fmt;

struct LenientInt<T>(std::marker::PhantomData<T>);

impl<'de, T> Visitor<'de> for LenientInt<T>
where
    T: TryFrom<i64> + TryFrom<u64>,
{
    type Value = T;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("an integer")
    }

    fn visit_i64<E: de::Error>(self, v: i64) -> Result<T, E> {
        T::try_from(v).map_err(|_| E::custom(format!("integer {v} is out of range")))
    }

    fn visit_u64<E: de::Error>(self, v: u64) -> Result<T, E> {
        T::try_from(v).map_err(|_| E::custom(format!("integer {v} is out of range")))
    }

    fn visit_f64<E: de::Error>(self, v: f64) -> Result<T, E> {
        if v.fract() == 0.0 && v.abs() < 9.0e15 {
            self.visit_i64(v as i64)
        } else {
            Err(E::custom(format!("expected an integer, found {v}")))
        }
    }

    fn visit_str<E: de::Error>(self, v: &str) -> Result<T, E> {
        match v.trim().parse::<i64>() {
            Ok(n) => self.visit_i64(n),
            Err(_) => Err(E::custom(format!(
                "expected an integer, found the string {v:?}"
            ))),
        }
    }
}

struct Opt<V>(V);

impl<'de, V: Visitor<'de>> Visitor<'de> for Opt<V> {
    type Value = Option<V::Value>;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        self.0.expecting(f)
    }

    fn visit_none<E: de::Error>(self) -> Result<Self::Value, E> {
        Ok(None)
    }

    fn visit_unit<E: de::Error>(self) -> Result<Self::Value, E> {
        Ok(None)
    }

    fn visit_some<D: Deserializer<'de>>(self, d: D) -> Result<Self::Value, D::Error> {
        d.deserialize_any(self.0).map(Some)
    }
}

/// An `i32` member, from a number or a numeric string.
pub fn lenient_i32<'de, D: Deserializer<'de>>(d: D) -> Result<i32, D::Error> {
    d.deserialize_any(LenientInt::<i32>(std::marker::PhantomData))
}

/// An `i64` member, from a number or a numeric string.
pub fn lenient_i64<'de, D: Deserializer<'de>>(d: D) -> Result<i64, D::Error> {
    d.deserialize_any(LenientInt::<i64>(std::marker::PhantomData))
}

/// An optional `i32` member; `null` is absent.
pub fn lenient_opt_i32<'de, D: Deserializer<'de>>(d: D) -> Result<Option<i32>, D::Error> {
    d.deserialize_option(Opt(LenientInt::<i32>(std::marker::PhantomData)))
}

/// An optional `i64` member; `null` is absent.
pub fn lenient_opt_i64<'de, D: Deserializer<'de>>(d: D) -> Result<Option<i64>, D::Error> {
    d.deserialize_option(Opt(LenientInt::<i64>(std::marker::PhantomData)))
}

#[cfg(test)]
mod tests {
    use crate::model::{ContainerDefinition, PortMapping};

    #[test]
    fn numeric_strings_are_normalised() {
        let c: ContainerDefinition =
            serde_json::from_str(r#"{"name":"web","memory":"100","cpu":"99"}"#).unwrap();
        assert_eq!(c.memory, Some(100));
        assert_eq!(c.cpu, Some(99));
        assert_eq!(
            serde_json::to_value(&c).unwrap(),
            serde_json::json!({"name":"web","memory":100,"cpu":99})
        );
    }

    #[test]
    fn null_is_absent_and_numbers_stay_numbers() {
        let p: PortMapping =
            serde_json::from_str(r#"{"containerPort":80,"hostPort":null}"#).unwrap();
        assert_eq!(p.container_port, Some(80));
        assert_eq!(p.host_port, None);
    }

    #[test]
    fn non_numeric_strings_and_fractions_are_refused() {
        for bad in [
            r#"{"memory":"lots"}"#,
            r#"{"memory":1.5}"#,
            r#"{"memory":true}"#,
            r#"{"memory":99999999999}"#,
        ] {
            assert!(
                serde_json::from_str::<ContainerDefinition>(bad).is_err(),
                "{bad}"
            );
        }
    }
}
