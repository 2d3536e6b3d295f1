//! Durations and sizes as an operator writes them: `"250ms"`, `"30s"`,
//! `"5m"`, `"1h 30m"`, `"7days"`; `"512KiB"`, `"128MiB"`, `"1GiB"`.
//!
//! A bare number is read in the unit of the integer key the setting replaced
//! (`max_file_age = 300` became `max_file_age = "5m"`, and `300` still
//! means 300 seconds), so older files keep their meaning. The unit of bare
//! numbers is the type's parameter: [`Seconds`], [`Millis`], [`Hours`],
//! [`Days`]; [`Bytes`], [`KiB`], [`MiB`].

use std::borrow::Cow;
use std::fmt;

use schemars::{JsonSchema, Schema, SchemaGenerator, json_schema};
use serde::de::{self, Visitor};
use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// A duration setting; a bare number counts `UNIT_MS` milliseconds each.
///
/// ```
/// use spate_operators::component::units::Seconds;
/// let age: Seconds = serde_json::from_str("\"5m\"").unwrap();
/// assert_eq!(age.as_secs(), 300);
/// let old: Seconds = serde_json::from_str("300").unwrap();
/// assert_eq!(old, age);
/// assert_eq!(serde_json::to_string(&age).unwrap(), "\"5m\"");
/// ```
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct ConfigDuration<const UNIT_MS: u64>(std::time::Duration);

/// A duration whose bare numbers are seconds.
pub type Seconds = ConfigDuration<1_000>;
/// A duration whose bare numbers are milliseconds.
pub type Millis = ConfigDuration<1>;
/// A duration whose bare numbers are hours.
pub type Hours = ConfigDuration<3_600_000>;
/// A duration whose bare numbers are days.
pub type Days = ConfigDuration<86_400_000>;

impl<const UNIT_MS: u64> ConfigDuration<UNIT_MS> {
    /// `n` of the bare-number unit.
    pub const fn units(n: u64) -> Self {
        ConfigDuration(std::time::Duration::from_millis(n.saturating_mul(UNIT_MS)))
    }

    /// A duration.
    pub const fn new(duration: std::time::Duration) -> Self {
        ConfigDuration(duration)
    }

    /// The duration.
    pub const fn get(self) -> std::time::Duration {
        self.0
    }

    /// Whole seconds.
    pub const fn as_secs(self) -> u64 {
        self.0.as_secs()
    }

    /// Whole milliseconds (saturating).
    pub fn as_millis(self) -> u64 {
        u64::try_from(self.0.as_millis()).unwrap_or(u64::MAX)
    }

    /// Whether it is zero.
    pub fn is_zero(self) -> bool {
        self.0.is_zero()
    }
}

impl<const UNIT_MS: u64> fmt::Debug for ConfigDuration<UNIT_MS> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{self}")
    }
}

impl<const UNIT_MS: u64> fmt::Display for ConfigDuration<UNIT_MS> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.0.is_zero() {
            return f.write_str("0s");
        }
        f.write_str(&humantime::format_duration(self.0).to_string())
    }
}

impl<const UNIT_MS: u64> Serialize for ConfigDuration<UNIT_MS> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_str(self)
    }
}

impl<'de, const UNIT_MS: u64> Deserialize<'de> for ConfigDuration<UNIT_MS> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct Read<const U: u64>;
        impl<const U: u64> Visitor<'_> for Read<U> {
            type Value = ConfigDuration<U>;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a duration such as \"30s\", \"5m\" or \"250ms\"")
            }
            fn visit_u64<E: de::Error>(self, n: u64) -> Result<Self::Value, E> {
                Ok(ConfigDuration::units(n))
            }
            fn visit_i64<E: de::Error>(self, n: i64) -> Result<Self::Value, E> {
                u64::try_from(n)
                    .map(ConfigDuration::units)
                    .map_err(|_| E::custom(format!("{n} is negative; a duration is 0 or more")))
            }
            fn visit_str<E: de::Error>(self, text: &str) -> Result<Self::Value, E> {
                let text = text.trim();
                if let Ok(n) = text.parse::<u64>() {
                    return Ok(ConfigDuration::units(n));
                }
                humantime::parse_duration(text).map(ConfigDuration).map_err(|e| {
                    E::custom(format!(
                        "{text:?} is not a duration ({e}); write e.g. \"30s\", \"5m\", \"250ms\", \"2h\""
                    ))
                })
            }
        }
        deserializer.deserialize_any(Read::<UNIT_MS>)
    }
}

impl<const UNIT_MS: u64> JsonSchema for ConfigDuration<UNIT_MS> {
    fn schema_name() -> Cow<'static, str> {
        // One name per unit: schemars keeps one definition per name.
        format!("Duration_{}", unit_name(UNIT_MS)).into()
    }

    fn json_schema(_: &mut SchemaGenerator) -> Schema {
        json_schema!({
            "type": "string",
            "format": "duration",
            "x-bare-number-unit": unit_name(UNIT_MS),
        })
    }
}

fn size_unit_name(unit: u64) -> &'static str {
    match unit {
        1 => "bytes",
        1_024 => "KiB",
        1_048_576 => "MiB",
        _ => "units",
    }
}

fn unit_name(unit_ms: u64) -> &'static str {
    match unit_ms {
        1 => "milliseconds",
        1_000 => "seconds",
        3_600_000 => "hours",
        86_400_000 => "days",
        _ => "units",
    }
}

/// A size setting; a bare number counts `UNIT` bytes each.
///
/// ```
/// use spate_operators::component::units::MiB;
/// let size: MiB = serde_json::from_str("\"128MiB\"").unwrap();
/// assert_eq!(size.bytes(), 128 << 20);
/// assert_eq!(serde_json::from_str::<MiB>("128").unwrap(), size);
/// assert_eq!(serde_json::from_str::<MiB>("\"1GiB\"").unwrap().bytes(), 1 << 30);
/// assert_eq!(serde_json::to_string(&size).unwrap(), "\"128MiB\"");
/// ```
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct ByteSize<const UNIT: u64>(u64);

/// A size whose bare numbers are bytes.
pub type Bytes = ByteSize<1>;
/// A size whose bare numbers are KiB.
pub type KiB = ByteSize<1_024>;
/// A size whose bare numbers are MiB.
pub type MiB = ByteSize<1_048_576>;

const SIZE_UNITS: [(&str, u64); 10] = [
    ("tib", 1 << 40),
    ("gib", 1 << 30),
    ("mib", 1 << 20),
    ("kib", 1 << 10),
    ("tb", 1_000_000_000_000),
    ("gb", 1_000_000_000),
    ("mb", 1_000_000),
    ("kb", 1_000),
    ("b", 1),
    ("", 0),
];

impl<const UNIT: u64> ByteSize<UNIT> {
    /// `n` of the bare-number unit.
    pub const fn units(n: u64) -> Self {
        ByteSize(n.saturating_mul(UNIT))
    }

    /// A size in bytes.
    pub const fn from_bytes(bytes: u64) -> Self {
        ByteSize(bytes)
    }

    /// The size in bytes.
    pub const fn bytes(self) -> u64 {
        self.0
    }

    /// The size in bytes, as `usize` (saturating).
    pub fn bytes_usize(self) -> usize {
        usize::try_from(self.0).unwrap_or(usize::MAX)
    }

    /// Whether it is zero.
    pub fn is_zero(self) -> bool {
        self.0 == 0
    }

    fn parse(text: &str) -> Result<Self, String> {
        let text = text.trim();
        let split = text
            .find(|c: char| !(c.is_ascii_digit() || c == '.'))
            .unwrap_or(text.len());
        let (number, unit) = text.split_at(split);
        let unit = unit.trim().to_ascii_lowercase();
        let multiplier = match SIZE_UNITS.iter().find(|(name, _)| *name == unit) {
            Some((_, 0)) => UNIT,
            Some((_, m)) => *m,
            None => {
                return Err(format!(
                    "{text:?} is not a size; write e.g. \"512KiB\", \"128MiB\", \"1GiB\""
                ));
            }
        };
        let value: f64 = number
            .parse()
            .map_err(|_| format!("{text:?} is not a size; write e.g. \"128MiB\""))?;
        Ok(ByteSize((value * multiplier as f64).round() as u64))
    }
}

impl<const UNIT: u64> fmt::Debug for ByteSize<UNIT> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{self}")
    }
}

impl<const UNIT: u64> fmt::Display for ByteSize<UNIT> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (name, unit) in [
            ("TiB", 1u64 << 40),
            ("GiB", 1 << 30),
            ("MiB", 1 << 20),
            ("KiB", 1 << 10),
        ] {
            if self.0 >= unit && self.0.is_multiple_of(unit) {
                return write!(f, "{}{name}", self.0 / unit);
            }
        }
        write!(f, "{}B", self.0)
    }
}

impl<const UNIT: u64> Serialize for ByteSize<UNIT> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_str(self)
    }
}

impl<'de, const UNIT: u64> Deserialize<'de> for ByteSize<UNIT> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct Read<const U: u64>;
        impl<const U: u64> Visitor<'_> for Read<U> {
            type Value = ByteSize<U>;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a size such as \"128MiB\" or \"512KiB\"")
            }
            fn visit_u64<E: de::Error>(self, n: u64) -> Result<Self::Value, E> {
                Ok(ByteSize::units(n))
            }
            fn visit_i64<E: de::Error>(self, n: i64) -> Result<Self::Value, E> {
                u64::try_from(n)
                    .map(ByteSize::units)
                    .map_err(|_| E::custom(format!("{n} is negative; a size is 0 or more")))
            }
            fn visit_str<E: de::Error>(self, text: &str) -> Result<Self::Value, E> {
                ByteSize::parse(text).map_err(E::custom)
            }
        }
        deserializer.deserialize_any(Read::<UNIT>)
    }
}

impl<const UNIT: u64> JsonSchema for ByteSize<UNIT> {
    fn schema_name() -> Cow<'static, str> {
        // One name per unit: schemars keeps one definition per name.
        format!("Size_{}", size_unit_name(UNIT)).into()
    }

    fn json_schema(_: &mut SchemaGenerator) -> Schema {
        let unit = size_unit_name(UNIT);
        json_schema!({
            "type": "string",
            "format": "size",
            "x-bare-number-unit": unit,
        })
    }
}

/// serde `with` modules for integer settings that also take units: the
/// setting keeps its integer type in the code (in the unit of its old key),
/// and the file may say `"5m"` or `"128MiB"`.
///
/// ```
/// #[derive(serde::Deserialize, serde::Serialize)]
/// struct Lake {
///     #[serde(rename = "max_file_age", alias = "max_file_age_secs",
///             with = "spate_operators::component::units::with::secs")]
///     max_file_age: u64,
/// }
/// let new: Lake = toml::from_str("max_file_age = \"5m\"").unwrap();
/// let old: Lake = toml::from_str("max_file_age = 300").unwrap();
/// assert_eq!((new.max_file_age, old.max_file_age), (300, 300));
/// assert_eq!(toml::to_string(&new).unwrap().trim(), "max_file_age = \"5m\"");
/// ```
pub mod with {
    macro_rules! whole_units {
        ($name:ident, $wrapper:ty, $unit:expr, $get:ident, $what:literal) => {
            #[doc = concat!("An integer count of ", $what, ", written with any unit.")]
            pub mod $name {
                use serde::{Deserialize, Deserializer, Serialize, Serializer};

                /// Writes the value with its unit (`"5m"`, `"128MiB"`).
                pub fn serialize<T, S>(value: &T, serializer: S) -> Result<S::Ok, S::Error>
                where
                    T: Copy + TryInto<u64>,
                    S: Serializer,
                {
                    let n: u64 = (*value).try_into().unwrap_or(u64::MAX);
                    <$wrapper>::units(n).serialize(serializer)
                }

                /// Reads a bare number (in this unit) or a value with a unit,
                /// which must be a whole number of this unit.
                pub fn deserialize<'de, T, D>(deserializer: D) -> Result<T, D::Error>
                where
                    T: TryFrom<u64>,
                    D: Deserializer<'de>,
                {
                    let value = <$wrapper>::deserialize(deserializer)?;
                    let base = value.$get();
                    if !base.is_multiple_of($unit) {
                        return Err(serde::de::Error::custom(format!(
                            "{value} is not a whole number of {}",
                            $what
                        )));
                    }
                    T::try_from(base / $unit)
                        .map_err(|_| serde::de::Error::custom(format!("{value} is too large")))
                }
            }
        };
    }

    whole_units!(millis, super::super::Millis, 1, as_millis, "milliseconds");
    whole_units!(secs, super::super::Seconds, 1_000, as_millis, "seconds");
    whole_units!(hours, super::super::Hours, 3_600_000, as_millis, "hours");
    whole_units!(days, super::super::Days, 86_400_000, as_millis, "days");
    whole_units!(bytes, super::super::Bytes, 1, bytes, "bytes");
    whole_units!(kib, super::super::KiB, 1_024, bytes, "KiB");
    whole_units!(mib, super::super::MiB, 1_048_576, bytes, "MiB");
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_read_units_and_bare_numbers_in_the_old_unit() {
        let read = |t: &str| serde_json::from_str::<Millis>(t);
        assert_eq!(read("\"250ms\"").unwrap().as_millis(), 250);
        assert_eq!(read("\"2s\"").unwrap().as_millis(), 2_000);
        assert_eq!(read("250").unwrap().as_millis(), 250);
        assert_eq!(read("\"250\"").unwrap().as_millis(), 250);
        assert_eq!(
            serde_json::from_str::<Hours>("72").unwrap().as_secs(),
            72 * 3600
        );
        assert_eq!(
            serde_json::from_str::<Days>("\"30d\"").unwrap().as_secs(),
            30 * 86_400
        );
        let err = read("\"soon\"").unwrap_err().to_string();
        assert!(err.contains("is not a duration"), "{err}");
        assert!(read("-1").is_err());
    }

    #[test]
    fn durations_print_as_written() {
        for (text, unit_ms) in [("5m", 1_000), ("250ms", 1), ("1h 30m", 1_000), ("0s", 1)] {
            let d: ConfigDuration<1> = serde_json::from_str(&format!("\"{text}\"")).unwrap();
            assert_eq!(d.to_string(), text, "{unit_ms}");
        }
    }

    #[test]
    fn sizes_read_binary_and_decimal_units() {
        let read = |t: &str| serde_json::from_str::<KiB>(t).map(|s| s.bytes());
        assert_eq!(read("1024").unwrap(), 1 << 20);
        assert_eq!(read("\"1MiB\"").unwrap(), 1 << 20);
        assert_eq!(read("\"1 mib\"").unwrap(), 1 << 20);
        assert_eq!(read("\"1.5KiB\"").unwrap(), 1536);
        assert_eq!(read("\"2MB\"").unwrap(), 2_000_000);
        assert_eq!(read("\"64B\"").unwrap(), 64);
        assert!(read("\"lots\"").is_err());
        assert!(read("\"12XB\"").is_err());
        assert_eq!(ByteSize::<1>::from_bytes(1536).to_string(), "1536B");
        assert_eq!(MiB::units(4096).to_string(), "4GiB");
    }
}
