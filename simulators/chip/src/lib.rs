//! Card-side ePassport chip simulator
