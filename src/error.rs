//! One error type for the whole library. Every message here is shown to a person (page or CLI),
//! so each says what is wrong and, where it helps, what would be accepted instead.
//!
//! Every error has a code ([`Error::code`]): the kind of problem for the plain variants
//! ("data", "recipe", …) and a code of its own for the messages made with [`coded!`], which also
//! keep the values they name ([`Error::args`]). The page (www/i18n.js, `err.<code>`) says an
//! error in the user's language from its code and values; the CLI prints the English text.

use thiserror::Error;

#[derive(Debug, Error)]
pub enum Error {
    #[error("config.json: {0}")]
    Config(String),
    #[error("unsupported model_type \"{found}\": Burnish supports {supported}")]
    UnsupportedModel { found: String, supported: String },
    #[error("tokenizer.json: {0}")]
    Tokenizer(String),
    #[error("model.safetensors: {0}")]
    Weights(String),
    #[error("{0}")]
    Data(String),
    #[error("recipe: {0}")]
    Recipe(String),
    #[error("backend: {0}")]
    Backend(String),
    #[error("{0}")]
    Io(String),
    #[error("{0}")]
    Other(String),
    /// A message with a code of its own and the values it names (made by [`coded!`]).
    #[error("{0}")]
    Coded(Box<Coded>),
}

/// The kind of a problem: the plain variants' codes, and the prefix of a coded message.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Config,
    Tokenizer,
    Weights,
    Data,
    Recipe,
    Backend,
    Io,
    Other,
}

impl Kind {
    pub fn code(self) -> &'static str {
        match self {
            Kind::Config => "config",
            Kind::Tokenizer => "tokenizer",
            Kind::Weights => "weights",
            Kind::Data => "data",
            Kind::Recipe => "recipe",
            Kind::Backend => "backend",
            Kind::Io => "io",
            Kind::Other => "other",
        }
    }

    /// What the English text starts with, as for the plain variant of this kind.
    fn prefix(self) -> &'static str {
        match self {
            Kind::Config => "config.json: ",
            Kind::Tokenizer => "tokenizer.json: ",
            Kind::Weights => "model.safetensors: ",
            Kind::Recipe => "recipe: ",
            Kind::Backend => "backend: ",
            Kind::Data | Kind::Io | Kind::Other => "",
        }
    }
}

/// A coded message: `code` names it (e.g. "data.empty-file"), `args` are the values its text
/// names, by the names the page's translation uses.
#[derive(Debug)]
pub struct Coded {
    pub kind: Kind,
    pub code: &'static str,
    pub args: Vec<(&'static str, String)>,
    pub text: String,
}

impl std::fmt::Display for Coded {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}{}", self.kind.prefix(), self.text)
    }
}

/// Makes an [`Error::Coded`]: `coded!(Data, "data.empty-file", "{name}: the file is empty", name = n)`.
/// The named values fill the English text and are kept, by name, for the page's translation;
/// values after a `;` are kept without appearing in the English text (`…; field = f.name`).
macro_rules! coded {
    ($kind:ident, $code:literal, $fmt:literal $(, $k:ident = $v:expr)* $(; $xk:ident = $xv:expr)* $(,)?) => {{
        $( let $k = $v; )*
        $crate::error::Error::Coded(Box::new($crate::error::Coded {
            kind: $crate::error::Kind::$kind,
            code: $code,
            args: vec![$( (stringify!($k), $k.to_string()), )* $( (stringify!($xk), $xv.to_string()), )*],
            text: format!($fmt $(, $k = $k)*),
        }))
    }};
}
pub(crate) use coded;

pub type Result<T> = std::result::Result<T, Error>;

impl Error {
    pub fn data(msg: impl Into<String>) -> Self {
        Error::Data(msg.into())
    }

    /// The kind of problem: "config", "data", "recipe", … ("unsupported-model" for its variant).
    pub fn kind(&self) -> &'static str {
        match self {
            Error::Config(_) => "config",
            Error::UnsupportedModel { .. } => "config",
            Error::Tokenizer(_) => "tokenizer",
            Error::Weights(_) => "weights",
            Error::Data(_) => "data",
            Error::Recipe(_) => "recipe",
            Error::Backend(_) => "backend",
            Error::Io(_) => "io",
            Error::Other(_) => "other",
            Error::Coded(c) => c.kind.code(),
        }
    }

    /// The error's code: its own for a coded message and the unsupported architecture, else its kind.
    pub fn code(&self) -> &'static str {
        match self {
            Error::UnsupportedModel { .. } => "config.unsupported-model",
            Error::Coded(c) => c.code,
            e => e.kind(),
        }
    }

    /// The values a coded message names, by name (none for a plain variant).
    pub fn args(&self) -> Vec<(&'static str, String)> {
        match self {
            Error::UnsupportedModel { found, supported } => vec![("found", found.clone()), ("supported", supported.clone())],
            Error::Coded(c) => c.args.clone(),
            _ => Vec::new(),
        }
    }

    /// The English text without its kind's prefix ("config.json: ", "recipe: ", …): what the page
    /// shows after its own words for the kind when it has no translation for the code.
    pub fn detail(&self) -> String {
        match self {
            Error::Config(m)
            | Error::Tokenizer(m)
            | Error::Weights(m)
            | Error::Data(m)
            | Error::Recipe(m)
            | Error::Backend(m)
            | Error::Io(m)
            | Error::Other(m) => m.clone(),
            Error::Coded(c) => c.text.clone(),
            e => e.to_string(),
        }
    }
}

impl From<std::io::Error> for Error {
    fn from(e: std::io::Error) -> Self {
        Error::Io(e.to_string())
    }
}
