//! One error type for the whole library. Every message here is shown to a person (page or CLI),
//! so each says what is wrong and, where it helps, what would be accepted instead.

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
}

pub type Result<T> = std::result::Result<T, Error>;

impl Error {
    pub fn data(msg: impl Into<String>) -> Self {
        Error::Data(msg.into())
    }
}

impl From<std::io::Error> for Error {
    fn from(e: std::io::Error) -> Self {
        Error::Io(e.to_string())
    }
}
