//! Query errors: a malformed query names its stage and operator.

use std::fmt;

use flume_core::DbError;
use flume_view_index::{LmdbError, ReadError};

/// Where in a query a problem is.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct At {
    /// The stage's position, from 1.
    pub stage: usize,
    /// The stage's kind (`$filter`, `$map`, `$reduce`, `$sort`), or `query` for the whole.
    pub kind: String,
    /// The operator involved (`$gt`, `$sum`...), if any.
    pub operator: Option<String>,
}

impl fmt::Display for At {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "stage {} ({})", self.stage, self.kind)?;
        if let Some(op) = &self.operator {
            write!(f, ", operator {op}")?;
        }
        Ok(())
    }
}

/// Errors of queries.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum QueryError {
    /// The query is not valid: fix the part named.
    #[error("malformed query at {at}: {message}")]
    Malformed {
        /// Where.
        at: At,
        /// What is wrong and what is expected instead.
        message: String,
    },
    /// The view could not be read.
    #[error(transparent)]
    Read(#[from] ReadError),
}

impl From<DbError> for QueryError {
    fn from(e: DbError) -> Self {
        QueryError::Read(ReadError::Db(e))
    }
}

impl From<LmdbError> for QueryError {
    fn from(e: LmdbError) -> Self {
        QueryError::Read(ReadError::Lmdb(e))
    }
}

/// A parse error before its position in the query is known.
#[derive(Debug)]
pub(crate) struct Bad {
    pub(crate) operator: Option<String>,
    pub(crate) message: String,
}

impl Bad {
    pub(crate) fn new(message: impl Into<String>) -> Self {
        Bad {
            operator: None,
            message: message.into(),
        }
    }
    pub(crate) fn op(operator: &str, message: impl Into<String>) -> Self {
        Bad {
            operator: Some(operator.to_string()),
            message: message.into(),
        }
    }
    pub(crate) fn at(self, stage: usize, kind: &str) -> QueryError {
        let at = At {
            stage,
            kind: kind.to_string(),
            operator: self.operator,
        };
        QueryError::Malformed {
            at,
            message: self.message,
        }
    }
}
