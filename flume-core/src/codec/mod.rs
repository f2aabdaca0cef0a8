//! Codecs turn typed records into the log's opaque bytes and back.

mod document;

use bytes::Bytes;
use serde::Serialize;
use serde::de::DeserializeOwned;

pub use document::Document;

use crate::CodecError;

/// Encodes records of type `T` for the log and decodes them back.
///
/// A database decodes each record once, however many views read it, so `decode` may be costly
/// without multiplying.
pub trait Codec<T>: Send + Sync + 'static {
    /// Encode one record.
    ///
    /// # Errors
    /// [`CodecError::Encode`] when the value cannot be represented.
    fn encode(&self, value: &T) -> Result<Bytes, CodecError>;

    /// Decode one record.
    ///
    /// # Errors
    /// [`CodecError::Decode`] when the bytes are not a valid `T`.
    fn decode(&self, bytes: &[u8]) -> Result<T, CodecError>;
}

/// The default codec for typed records: compact, fast [postcard](https://docs.rs/postcard).
///
/// postcard is not self-describing: the record type must not use untagged enums, `flatten`,
/// `skip_serializing_if` or `serde_json::Value`. For schemaless JSON use [`Document`], which
/// carries its own tags in binary formats.
#[derive(Clone, Copy, Debug, Default)]
pub struct Postcard;

impl<T: Serialize + DeserializeOwned + Send + Sync + 'static> Codec<T> for Postcard {
    fn encode(&self, value: &T) -> Result<Bytes, CodecError> {
        postcard::to_stdvec(value)
            .map(Bytes::from)
            .map_err(|e| CodecError::Encode(e.to_string()))
    }

    fn decode(&self, bytes: &[u8]) -> Result<T, CodecError> {
        postcard::from_bytes(bytes).map_err(|e| CodecError::Decode(e.to_string()))
    }
}

/// JSON text: readable with any tool, and what the JavaScript flumedb wrote. Larger and slower
/// than [`Postcard`].
#[derive(Clone, Copy, Debug, Default)]
pub struct Json;

impl<T: Serialize + DeserializeOwned + Send + Sync + 'static> Codec<T> for Json {
    fn encode(&self, value: &T) -> Result<Bytes, CodecError> {
        serde_json::to_vec(value)
            .map(Bytes::from)
            .map_err(|e| CodecError::Encode(e.to_string()))
    }

    fn decode(&self, bytes: &[u8]) -> Result<T, CodecError> {
        serde_json::from_slice(bytes).map_err(|e| CodecError::Decode(e.to_string()))
    }
}
