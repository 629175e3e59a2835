//! Machine readable zone (ICAO 9303 Parts 3-7): TD1, TD2 and TD3.
//!
//! The parser validates the character set, every check digit and the
//! composite check digit, handles long document numbers that overflow into the
//! optional data field (TD1, TD2) and accepts two-letter document codes (`PP`).
//! Errors name the format, line and field, never the value: an MRZ is personal
//! data and errors end up in logs.

use std::fmt;
use thiserror::Error;

/// The three ICAO formats, by line count x line length.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MrzFormat {
    /// 3 x 30 (ID cards).
    Td1,
    /// 2 x 36.
    Td2,
    /// 2 x 44 (passport books).
    Td3,
}

impl MrzFormat {
    fn name(self) -> &'static str {
        match self {
            MrzFormat::Td1 => "TD1",
            MrzFormat::Td2 => "TD2",
            MrzFormat::Td3 => "TD3",
        }
    }
}

impl fmt::Display for MrzFormat {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// Field names used in errors.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MrzField {
    DocumentCode,
    IssuingState,
    DocumentNumber,
    DateOfBirth,
    Sex,
    DateOfExpiry,
    Nationality,
    OptionalData,
    Composite,
    Names,
}

impl fmt::Display for MrzField {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            MrzField::DocumentCode => "document code",
            MrzField::IssuingState => "issuing state",
            MrzField::DocumentNumber => "document number",
            MrzField::DateOfBirth => "date of birth",
            MrzField::Sex => "sex",
            MrzField::DateOfExpiry => "date of expiry",
            MrzField::Nationality => "nationality",
            MrzField::OptionalData => "optional data",
            MrzField::Composite => "composite",
            MrzField::Names => "names",
        })
    }
}

/// Why an MRZ was rejected. Positions are 1-based, as in ICAO 9303.
#[derive(Debug, Error, Clone, PartialEq, Eq)]
pub enum MrzError {
    #[error(
        "MRZ has {lines} line(s) of length(s) {lengths:?}: expected 3x30 (TD1), 2x36 (TD2) or 2x44 (TD3)"
    )]
    Shape { lines: usize, lengths: Vec<usize> },
    #[error("{format} line {line}, position {position}: character outside A-Z, 0-9 and '<'")]
    Character {
        format: MrzFormat,
        line: usize,
        position: usize,
    },
    #[error("{format} line {line}: {field} check digit is {found}, computed {computed}")]
    CheckDigit {
        format: MrzFormat,
        line: usize,
        field: MrzField,
        found: char,
        computed: u8,
    },
    #[error("{format} line {line}: {field} is malformed ({what})")]
    Field {
        format: MrzFormat,
        line: usize,
        field: MrzField,
        what: &'static str,
    },
}

/// A parsed and validated MRZ. `Debug` prints the format only: the rest is personal data.
#[derive(Clone, PartialEq, Eq)]
pub struct Mrz {
    pub format: MrzFormat,
    /// `P`, `PP`, `I`, `ID`, `AC`... (fillers removed).
    pub document_code: String,
    /// Three-letter code as printed (e.g. `UTO`, `D` for Germany after removing fillers).
    pub issuing_state: String,
    /// Full document number, including an overflow part for long numbers, fillers removed.
    pub document_number: String,
    pub document_number_check: u8,
    /// YYMMDD; unknown parts may be `<<`.
    pub date_of_birth: String,
    pub sex: char,
    pub date_of_expiry: String,
    pub nationality: String,
    pub primary_identifier: String,
    pub secondary_identifier: String,
    /// Optional data field(s) as printed, fillers kept.
    pub optional_data: Vec<String>,
    lines: Vec<String>,
}

impl fmt::Debug for Mrz {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Mrz")
            .field("format", &self.format)
            .finish_non_exhaustive()
    }
}

/// ICAO check digit: weights 7-3-1, digits as themselves, A-Z = 10-35, `<` = 0.
/// Returns None for a character outside the MRZ alphabet.
pub fn check_digit(field: &[u8]) -> Option<u8> {
    const W: [u32; 3] = [7, 3, 1];
    let mut sum = 0u32;
    for (i, &c) in field.iter().enumerate() {
        let v = match c {
            b'0'..=b'9' => u32::from(c - b'0'),
            b'A'..=b'Z' => u32::from(c - b'A') + 10,
            b'<' => 0,
            _ => return None,
        };
        sum += v * W[i % 3];
    }
    Some((sum % 10) as u8)
}

fn strip(s: &str) -> String {
    s.trim_end_matches('<').to_string()
}

/// Splits an MRZ given as lines (newline separated) or as one concatenated string.
fn split_lines(text: &str) -> Vec<String> {
    let lines: Vec<String> = text
        .lines()
        .map(|l| l.trim().to_string())
        .filter(|l| !l.is_empty())
        .collect();
    if lines.len() == 1 {
        let l = &lines[0];
        let n = l.len();
        let width = match n {
            90 => Some(30),
            72 => Some(36),
            88 => Some(44),
            _ => None,
        };
        if let (Some(w), true) = (width, l.is_ascii()) {
            return l
                .as_bytes()
                .chunks(w)
                .map(|c| String::from_utf8_lossy(c).into_owned())
                .collect();
        }
    }
    lines
}

struct Ctx {
    format: MrzFormat,
}

impl Ctx {
    fn field_err(&self, line: usize, field: MrzField, what: &'static str) -> MrzError {
        MrzError::Field {
            format: self.format,
            line,
            field,
            what,
        }
    }

    /// Verifies `digit` against `data`; `allow_filler` accepts `<` when the data is all fillers.
    fn check(
        &self,
        line: usize,
        field: MrzField,
        data: &str,
        digit: char,
        allow_filler: bool,
    ) -> Result<u8, MrzError> {
        let computed = check_digit(data.as_bytes())
            .ok_or_else(|| self.field_err(line, field, "bad character"))?;
        if allow_filler && digit == '<' && data.bytes().all(|b| b == b'<') {
            return Ok(0);
        }
        match digit.to_digit(10) {
            Some(d) if d as u8 == computed => Ok(computed),
            _ => Err(MrzError::CheckDigit {
                format: self.format,
                line,
                field,
                found: digit,
                computed,
            }),
        }
    }

    fn date(
        &self,
        line: usize,
        field: MrzField,
        s: &str,
        unknown_allowed: bool,
    ) -> Result<(), MrzError> {
        let b = s.as_bytes();
        if b.len() != 6 {
            return Err(self.field_err(line, field, "not 6 characters"));
        }
        let pair = |i: usize| -> Option<Option<u32>> {
            let p = b.get(i..i + 2)?;
            if p == b"<<" {
                return Some(None);
            }
            if p.iter().all(u8::is_ascii_digit) {
                Some(Some(u32::from(p[0] - b'0') * 10 + u32::from(p[1] - b'0')))
            } else {
                None
            }
        };
        let (y, m, d) = match (pair(0), pair(2), pair(4)) {
            (Some(y), Some(m), Some(d)) => (y, m, d),
            _ => return Err(self.field_err(line, field, "not YYMMDD digits")),
        };
        if !unknown_allowed && (y.is_none() || m.is_none() || d.is_none()) {
            return Err(self.field_err(line, field, "unknown parts are not allowed"));
        }
        if y.is_none() && (m.is_some() || d.is_some()) {
            return Err(self.field_err(line, field, "unknown year with known month or day"));
        }
        if matches!(m, Some(m) if !(1..=12).contains(&m)) {
            return Err(self.field_err(line, field, "month out of range"));
        }
        if matches!(d, Some(d) if !(1..=31).contains(&d)) {
            return Err(self.field_err(line, field, "day out of range"));
        }
        Ok(())
    }
}

fn sub(s: &str, a: usize, b: usize) -> &str {
    // Callers validated ASCII and lengths; `get` keeps this panic-free regardless.
    s.get(a..b).unwrap_or("")
}

fn ch(s: &str, i: usize) -> char {
    s.as_bytes().get(i).map(|&b| b as char).unwrap_or('?')
}

fn names(field: &str) -> (String, String) {
    let (p, s) = field.split_once("<<").unwrap_or((field, ""));
    let clean = |x: &str| {
        x.split('<')
            .filter(|w| !w.is_empty())
            .collect::<Vec<_>>()
            .join(" ")
    };
    (clean(p), clean(s))
}

/// Parses and validates an MRZ (lines separated by newlines, or concatenated).
pub fn parse(text: &str) -> Result<Mrz, MrzError> {
    let lines = split_lines(text);
    let lengths: Vec<usize> = lines.iter().map(|l| l.chars().count()).collect();
    let format = match lengths.as_slice() {
        [30, 30, 30] => MrzFormat::Td1,
        [36, 36] => MrzFormat::Td2,
        [44, 44] => MrzFormat::Td3,
        _ => {
            return Err(MrzError::Shape {
                lines: lines.len(),
                lengths,
            });
        }
    };
    for (li, l) in lines.iter().enumerate() {
        if let Some(p) = l
            .chars()
            .position(|c| !(c.is_ascii_uppercase() || c.is_ascii_digit() || c == '<'))
        {
            return Err(MrzError::Character {
                format,
                line: li + 1,
                position: p + 1,
            });
        }
    }
    let cx = Ctx { format };
    let l1 = lines.first().map(String::as_str).unwrap_or("");
    let l2 = lines.get(1).map(String::as_str).unwrap_or("");

    let document_code = strip(sub(l1, 0, 2));
    if !ch(l1, 0).is_ascii_uppercase() {
        return Err(cx.field_err(
            1,
            MrzField::DocumentCode,
            "first character must be a letter",
        ));
    }
    let issuing_state = strip(sub(l1, 2, 5));
    if issuing_state.is_empty() || issuing_state.contains(|c: char| !c.is_ascii_uppercase()) {
        return Err(cx.field_err(1, MrzField::IssuingState, "not a letter code"));
    }

    // (line of the fields below, doc number field, doc cd char, optional field used for overflow)
    let mut optional_data = Vec::new();
    let (doc_line, doc_field, doc_cd, overflow, dob, dob_cd, sex, exp, exp_cd, nat, names_field);
    match format {
        MrzFormat::Td1 => {
            let l3 = lines.get(2).map(String::as_str).unwrap_or("");
            doc_line = 1;
            doc_field = sub(l1, 5, 14);
            doc_cd = ch(l1, 14);
            overflow = sub(l1, 15, 30);
            dob = (2, sub(l2, 0, 6));
            dob_cd = ch(l2, 6);
            sex = ch(l2, 7);
            exp = (2, sub(l2, 8, 14));
            exp_cd = ch(l2, 14);
            nat = sub(l2, 15, 18);
            names_field = l3;
            optional_data.push(sub(l1, 15, 30).to_string());
            optional_data.push(sub(l2, 18, 29).to_string());
        }
        MrzFormat::Td2 | MrzFormat::Td3 => {
            let n = if format == MrzFormat::Td2 { 36 } else { 44 };
            doc_line = 2;
            doc_field = sub(l2, 0, 9);
            doc_cd = ch(l2, 9);
            overflow = if format == MrzFormat::Td2 {
                sub(l2, 28, 35)
            } else {
                ""
            };
            dob = (2, sub(l2, 13, 19));
            dob_cd = ch(l2, 19);
            sex = ch(l2, 20);
            exp = (2, sub(l2, 21, 27));
            exp_cd = ch(l2, 27);
            nat = sub(l2, 10, 13);
            names_field = sub(l1, 5, n);
            optional_data
                .push(sub(l2, 28, n - 1 - usize::from(format == MrzFormat::Td3)).to_string());
        }
    }

    // Document number, with the long-number rule: check digit position holds '<',
    // the optional field continues the number and ends with its check digit.
    let (document_number, document_number_check) = if doc_cd == '<' && !overflow.is_empty() {
        let tail = overflow.split('<').next().unwrap_or("");
        if tail.len() < 2 {
            return Err(cx.field_err(
                doc_line,
                MrzField::DocumentNumber,
                "long number without overflow part",
            ));
        }
        let (rest, cd) = tail.split_at(tail.len() - 1);
        let full = format!("{doc_field}{rest}");
        let line_of_overflow = if format == MrzFormat::Td1 { 1 } else { 2 };
        let c = cx.check(
            line_of_overflow,
            MrzField::DocumentNumber,
            &full,
            ch(cd, 0),
            false,
        )?;
        (strip(&full), c)
    } else {
        let c = cx.check(doc_line, MrzField::DocumentNumber, doc_field, doc_cd, false)?;
        (strip(doc_field), c)
    };
    if document_number.is_empty() {
        return Err(cx.field_err(doc_line, MrzField::DocumentNumber, "empty"));
    }

    cx.date(dob.0, MrzField::DateOfBirth, dob.1, true)?;
    cx.check(dob.0, MrzField::DateOfBirth, dob.1, dob_cd, false)?;
    cx.date(exp.0, MrzField::DateOfExpiry, exp.1, false)?;
    cx.check(exp.0, MrzField::DateOfExpiry, exp.1, exp_cd, false)?;
    if !matches!(sex, 'M' | 'F' | 'X' | '<') {
        return Err(cx.field_err(2, MrzField::Sex, "not M, F, X or <"));
    }
    let nationality = strip(nat);
    if nationality.contains(|c: char| !c.is_ascii_uppercase()) {
        return Err(cx.field_err(2, MrzField::Nationality, "not a letter code"));
    }

    // Optional data check digit (TD3 personal number) and composite.
    let composite_input = match format {
        MrzFormat::Td1 => {
            let s = format!(
                "{}{}{}{}",
                sub(l1, 5, 30),
                sub(l2, 0, 7),
                sub(l2, 8, 15),
                sub(l2, 18, 29)
            );
            cx.check(2, MrzField::Composite, &s, ch(l2, 29), false)?;
            s
        }
        MrzFormat::Td2 => {
            let s = format!("{}{}{}", sub(l2, 0, 10), sub(l2, 13, 20), sub(l2, 21, 35));
            cx.check(2, MrzField::Composite, &s, ch(l2, 35), false)?;
            s
        }
        MrzFormat::Td3 => {
            cx.check(2, MrzField::OptionalData, sub(l2, 28, 42), ch(l2, 42), true)?;
            let s = format!("{}{}{}", sub(l2, 0, 10), sub(l2, 13, 20), sub(l2, 21, 43));
            cx.check(2, MrzField::Composite, &s, ch(l2, 43), false)?;
            s
        }
    };
    let _ = composite_input;
    let (primary_identifier, secondary_identifier) = names(names_field);
    if primary_identifier.is_empty() {
        let line = if format == MrzFormat::Td1 { 3 } else { 1 };
        return Err(cx.field_err(line, MrzField::Names, "primary identifier empty"));
    }
    Ok(Mrz {
        format,
        document_code,
        issuing_state,
        document_number,
        document_number_check,
        date_of_birth: dob.1.to_string(),
        sex,
        date_of_expiry: exp.1.to_string(),
        nationality,
        primary_identifier,
        secondary_identifier,
        optional_data,
        lines,
    })
}

impl Mrz {
    /// The lines as read, for comparison with DG1 and for rendering by the caller.
    pub fn lines(&self) -> &[String] {
        &self.lines
    }

    /// The MRZ as one string without separators (the DG1 5F1F encoding).
    pub fn concatenated(&self) -> String {
        self.lines.concat()
    }

    /// The BAC/PACE "MRZ information": document number (padded to at least 9
    /// characters with `<`) + check digit, date of birth + check digit, date
    /// of expiry + check digit (Part 11, 4.3.2 / 9.7.2).
    pub fn access_key_info(&self) -> String {
        let mut doc = self.document_number.clone();
        while doc.len() < 9 {
            doc.push('<');
        }
        let cd = |s: &str| check_digit(s.as_bytes()).unwrap_or(0);
        format!(
            "{doc}{}{}{}{}{}",
            cd(&doc),
            self.date_of_birth,
            cd(&self.date_of_birth),
            self.date_of_expiry,
            cd(&self.date_of_expiry)
        )
    }

    /// Issuing state with fillers removed, as used to compare with a certificate country.
    pub fn issuing_state(&self) -> &str {
        &self.issuing_state
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    // ICAO 9303 specimens (Utopia). TD3 from Part 4 (and the older BAC example
    // document of Part 11 App. D), TD1 and TD2 from Parts 5 and 6.
    const TD3: &str = "P<UTOERIKSSON<<ANNA<MARIA<<<<<<<<<<<<<<<<<<<\nL898902C36UTO7408122F1204159ZE184226B<<<<<10";
    const TD3_BAC: &str = "P<UTOERIKSSON<<ANNA<MARIA<<<<<<<<<<<<<<<<<<<\nL898902C<3UTO6908061F9406236ZE184226B<<<<<14";
    const TD1: &str = "I<UTOD231458907<<<<<<<<<<<<<<<\n7408122F1204159UTO<<<<<<<<<<<6\nERIKSSON<<ANNA<MARIA<<<<<<<<<<";
    const TD1_LONG: &str = "I<UTOD23145890<7349<<<<<<<<<<<\n3407127M9507122UTO<<<<<<<<<<<2\nSTEVENSON<<PETER<JOHN<<<<<<<<<";
    const TD2: &str = "I<UTOERIKSSON<<ANNA<MARIA<<<<<<<<<<<\nD231458907UTO7408122F1204159<<<<<<<6";

    #[test]
    fn check_digits_of_specimen_fields() {
        for (field, cd) in [
            ("L898902C3", 6),
            ("740812", 2),
            ("120415", 9),
            ("D23145890734", 9),
            ("L898902C<", 3),
            ("690806", 1),
            ("940623", 6),
            ("<<<<<<", 0),
        ] {
            assert_eq!(check_digit(field.as_bytes()), Some(cd), "{field}");
        }
        assert_eq!(check_digit(b"a"), None);
    }

    #[test]
    fn td3_specimen() {
        let m = parse(TD3).unwrap();
        assert_eq!(m.format, MrzFormat::Td3);
        assert_eq!(m.document_code, "P");
        assert_eq!(m.issuing_state, "UTO");
        assert_eq!(m.document_number, "L898902C3");
        assert_eq!(m.date_of_birth, "740812");
        assert_eq!(m.date_of_expiry, "120415");
        assert_eq!(m.sex, 'F');
        assert_eq!(m.primary_identifier, "ERIKSSON");
        assert_eq!(m.secondary_identifier, "ANNA MARIA");
        assert_eq!(m.access_key_info(), "L898902C3674081221204159");
        // Concatenated form parses too.
        assert_eq!(parse(&TD3.replace('\n', "")).unwrap(), m);
    }

    #[test]
    fn td3_bac_example_document_gives_the_app_d_mrz_information() {
        let m = parse(TD3_BAC).unwrap();
        assert_eq!(m.access_key_info(), "L898902C<369080619406236");
    }

    #[test]
    fn td1_specimens_including_long_document_number() {
        let m = parse(TD1).unwrap();
        assert_eq!(
            (m.format, m.document_number.as_str(), m.nationality.as_str()),
            (MrzFormat::Td1, "D23145890", "UTO")
        );
        let l = parse(TD1_LONG).unwrap();
        assert_eq!(l.document_number, "D23145890734");
        assert_eq!(l.document_number_check, 9);
        assert_eq!(l.access_key_info(), "D23145890734934071279507122");
        assert_eq!(l.primary_identifier, "STEVENSON");
    }

    #[test]
    fn td2_specimen() {
        let m = parse(TD2).unwrap();
        assert_eq!(
            (m.format, m.document_number.as_str()),
            (MrzFormat::Td2, "D23145890")
        );
    }

    #[test]
    fn two_letter_document_code() {
        // Same data as the TD3 specimen with "PP": only line 1 changes, no check digit covers it.
        let m = parse(&TD3.replacen("P<UTO", "PPUTO", 1)).unwrap();
        assert_eq!(m.document_code, "PP");
    }

    #[test]
    fn errors_name_the_field_not_the_value() {
        let bad = TD3.replace("L898902C36", "L898902C34");
        let e = parse(&bad).unwrap_err();
        assert_eq!(
            e.to_string(),
            "TD3 line 2: document number check digit is 4, computed 6"
        );
        assert!(!e.to_string().contains("L898"));
    }

    #[test]
    fn table_of_bad_inputs() {
        let cases: Vec<(String, &str)> = vec![
            (String::new(), "3x30"),
            ("P<UTO".into(), "3x30"),
            (
                TD3.replace("ERIKSSON", "ERIKSSOn"),
                "position 13: character outside",
            ),
            (
                TD3.replace("7408122F", "7408123F"),
                "date of birth check digit is 3, computed 2",
            ),
            (
                TD3.replace("1204159Z", "1204158Z"),
                "date of expiry check digit is 8, computed 9",
            ),
            (
                TD3.replace("<<<<<10", "<<<<<11"),
                "composite check digit is 1, computed 0",
            ),
            (
                TD3.replace("B<<<<<10", "B<<<<<20"),
                "optional data check digit is 2",
            ),
            (
                TD3.replace("7408122F", "7413122F"),
                "date of birth is malformed (month out of range)",
            ),
            (TD3.replace("2F120415", "2Q120415"), "sex is malformed"),
            (TD3.replace("P<UTO", "1<UTO"), "document code is malformed"),
            (TD3.replace("P<UTO", "P<<<<"), "issuing state is malformed"),
            (
                TD1_LONG.replace("<7349<", "<7<<<<"),
                "long number without overflow part",
            ),
            (
                TD1_LONG.replace("<7349<", "<7348<"),
                "document number check digit is 8, computed 9",
            ),
            (TD2.replace("07UTO", "08UTO"), "document number check digit"),
            (
                TD1.replace("ERIKSSON<<ANNA<MARIA", "<<<<<<<<<<<<<<<<<<<<"),
                "names is malformed",
            ),
            ("é".repeat(88), "3x30"),
        ];
        for (input, want) in cases {
            let err = parse(&input).expect_err(want).to_string();
            assert!(err.contains(want), "{err:?} should contain {want:?}");
        }
    }

    #[test]
    fn debug_does_not_print_personal_data() {
        let m = parse(TD3).unwrap();
        let d = format!("{m:?}");
        assert!(!d.contains("ERIKSSON") && !d.contains("L898902C"), "{d}");
    }
}
