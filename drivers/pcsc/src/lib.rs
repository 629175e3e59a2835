//! PC/SC document reader driver (work in progress).
