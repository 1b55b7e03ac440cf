//! Small serde helpers for decoding data from Go servers and agents leniently
//! (`null` where a list is expected, numbers where text is expected).

use serde::{Deserialize, Deserializer};

/// Decodes `null` (or a missing field, with `#[serde(default)]`) as `T::default()`.
pub fn null_as_default<'de, D, T>(d: D) -> Result<T, D::Error>
where
    D: Deserializer<'de>,
    T: Default + Deserialize<'de>,
{
    Ok(Option::<T>::deserialize(d)?.unwrap_or_default())
}
