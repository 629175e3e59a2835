#[derive(Debug, thiserror::Error)]
pub enum ProbeError { #[error("x")] X }
