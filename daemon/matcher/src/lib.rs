//! Fingerprint matching on ISO/IEC 19794-2 templates with two-finger fusion
