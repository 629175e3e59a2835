//! ICAO 9303 inspection: MRZ, BAC, PACE, secure messaging, LDS, passive/chip/active authentication
