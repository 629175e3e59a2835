pub mod abi;
pub mod model;
