//! Stage 1: YAML with spans, then JSON Schema validation mapped back onto spans.

mod schema;
pub mod yaml;

use std::sync::Arc;

use miette::Diagnostic as MietteDiagnostic;
use thiserror::Error;

use crate::diagnostic::Diagnostics;
pub use crate::limits::LoadLimits;
use crate::span::{SourceFile, Span};

pub use schema::{SCHEMA_JSON, SchemaError};
pub(crate) use schema::{STEP_TYPES, recovered_step_type};
pub use yaml::{Node, NodeKind, Resolved, Scalar, ScalarStyle};

/// Errors of the YAML stage.
#[derive(Debug, Error, MietteDiagnostic)]
#[non_exhaustive]
pub enum LoadError {
    /// The YAML does not parse.
    #[error("invalid YAML: {message}")]
    #[diagnostic(code("flowc::load::yaml-syntax"))]
    Syntax {
        /// The parser's explanation.
        message: String,
        /// Where.
        #[label("here")]
        span: Span,
        /// How to fix it (a tab in indentation gets its own advice).
        #[help]
        help: String,
    },
    /// The same key twice in one mapping.
    #[error("duplicate key `{key}`")]
    #[diagnostic(
        code("flowc::load::duplicate-key"),
        help("remove one of the two entries; YAML keys must be unique within a mapping")
    )]
    DuplicateKey {
        /// The key.
        key: String,
        /// The second occurrence.
        #[label(primary, "duplicate")]
        span: Span,
        /// The first occurrence.
        #[label("first defined here")]
        first: Span,
    },
    /// Nested too deeply.
    #[error("nesting deeper than {limit} levels")]
    #[diagnostic(
        code("flowc::load::too-deep"),
        help("flatten the structure; flows never need this much nesting")
    )]
    TooDeep {
        /// The limit.
        limit: usize,
        /// The collection that went over.
        #[label("too deep here")]
        span: Span,
    },
    /// Too many nodes (usually an alias bomb).
    #[error("document expands to more than {limit} nodes")]
    #[diagnostic(
        code("flowc::load::alias-budget"),
        help("anchors and aliases expand to copies; reduce the aliases or the document size")
    )]
    AliasBudget {
        /// The limit.
        limit: usize,
        /// Where the budget ran out.
        #[label("budget exceeded here")]
        span: Span,
    },
    /// The file is too large.
    #[error("file is {size} bytes, more than the limit of {limit} bytes")]
    #[diagnostic(
        code("flowc::load::file-too-large"),
        help("split the flow into smaller flows")
    )]
    TooLarge {
        /// Its size.
        size: usize,
        /// The limit.
        limit: usize,
        /// The start of the file.
        #[label("this file")]
        span: Span,
    },
    /// More than one YAML document.
    #[error("more than one YAML document in one file")]
    #[diagnostic(
        code("flowc::load::multiple-documents"),
        help("put each flow in its own file")
    )]
    MultipleDocuments {
        /// The second document start.
        #[label("second document starts here")]
        span: Span,
    },
    /// No document at all.
    #[error("the file is empty")]
    #[diagnostic(
        code("flowc::load::empty-document"),
        help("a flow file starts with `apiVersion: flowc/v1` and `kind: ApprovalFlow`")
    )]
    EmptyDocument {
        /// The start of the file.
        #[label("nothing here")]
        span: Span,
    },
    /// A key that is a sequence or mapping.
    #[error("mapping keys must be plain strings")]
    #[diagnostic(
        code("flowc::load::complex-key"),
        help("use a plain string as the key")
    )]
    ComplexKey {
        /// The key.
        #[label("not a string")]
        span: Span,
    },
    /// The file is not UTF-8.
    #[error("the file is not valid UTF-8")]
    #[diagnostic(code("flowc::load::not-utf8"), help("save the file as UTF-8"))]
    NotUtf8 {
        /// Where decoding failed.
        #[label("invalid byte here")]
        span: Span,
    },
}

/// Reads bytes as a source file, or a diagnostic when they are not UTF-8.
///
/// # Errors
/// `flowc::load::not-utf8` with the offset of the first bad byte.
pub fn source_from_bytes(name: &str, bytes: Vec<u8>) -> Result<Arc<SourceFile>, Diagnostics> {
    match String::from_utf8(bytes) {
        Ok(text) => Ok(SourceFile::new(name, text)),
        Err(e) => {
            let at = e.utf8_error().valid_up_to();
            let valid = String::from_utf8_lossy(e.as_bytes()).into_owned();
            let file = SourceFile::new(name, valid);
            let mut d = Diagnostics::new();
            d.add(
                &file,
                LoadError::NotUtf8 {
                    span: Span::new(at, at),
                },
            );
            Err(d)
        }
    }
}

/// Parses a flow file and validates it against the published schema.
///
/// # Errors
/// All YAML and schema diagnostics of the file.
pub fn load(file: &Arc<SourceFile>, limits: &LoadLimits) -> Result<Node, Diagnostics> {
    let (root, errors) = load_recovering(file, limits)?;
    if errors.is_empty() {
        Ok(root)
    } else {
        let mut d = Diagnostics::new();
        for e in errors {
            d.add(file, e);
        }
        Err(d)
    }
}

/// Parses a flow file and validates it, keeping the tree even when the schema fails,
/// so that later stages can check every part that is valid.
///
/// # Errors
/// The YAML diagnostics when the file does not parse (there is no tree to go on with).
pub fn load_recovering(
    file: &Arc<SourceFile>,
    limits: &LoadLimits,
) -> Result<(Node, Vec<SchemaError>), Diagnostics> {
    let root = yaml::parse(file, limits).map_err(|errs| {
        let mut d = Diagnostics::new();
        for e in errs {
            d.add(file, e);
        }
        d
    })?;
    let errors = schema::validate(&root);
    Ok((root, errors))
}
