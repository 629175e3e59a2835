//! ICAO 9303 TD3 (passport) machine readable zone: two lines of 44 characters.

use crate::scenario::{Date, Sex, Traveler};

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum MrzError {
    #[error("field {field} has characters outside A-Z 0-9 <")]
    BadCharacter { field: &'static str },
    #[error("field {field} is longer than {max} characters")]
    TooLong { field: &'static str, max: usize },
}

/// The data printed in a TD3 MRZ.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Td3Fields<'a> {
    /// "P" (or "P" + a subtype letter).
    pub document_code: &'a str,
    pub issuing_state: &'a str,
    pub surname: &'a str,
    pub given_names: &'a str,
    pub document_number: &'a str,
    pub nationality: &'a str,
    pub date_of_birth: Date,
    pub sex: Sex,
    pub expiry: Date,
    pub optional_data: &'a str,
}

/// The ICAO 9303 check digit: weights 7-3-1, `<` = 0, A–Z = 10–35.
pub fn check_digit(field: &str) -> Result<char, MrzError> {
    let mut sum = 0u32;
    for (i, c) in field.chars().enumerate() {
        let value = match c {
            '0'..='9' => c as u32 - '0' as u32,
            'A'..='Z' => c as u32 - 'A' as u32 + 10,
            '<' => 0,
            _ => {
                return Err(MrzError::BadCharacter {
                    field: "check digit input",
                });
            }
        };
        sum += value * [7, 3, 1][i % 3];
    }
    Ok(char::from(b'0' + (sum % 10) as u8))
}

/// Transliterates a name part to MRZ characters: upper case, spaces and hyphens become
/// fillers, apostrophes and anything outside A–Z are dropped.
pub fn mrz_name_part(s: &str) -> String {
    let mut out = String::new();
    for c in s.trim().chars() {
        match c.to_ascii_uppercase() {
            c @ 'A'..='Z' => out.push(c),
            ' ' | '-' if !out.ends_with('<') && !out.is_empty() => out.push('<'),
            _ => {}
        }
    }
    out.trim_end_matches('<').to_owned()
}

fn field(value: &str, len: usize, name: &'static str) -> Result<String, MrzError> {
    if value.chars().count() > len {
        return Err(MrzError::TooLong {
            field: name,
            max: len,
        });
    }
    if !value
        .chars()
        .all(|c| c.is_ascii_uppercase() || c.is_ascii_digit() || c == '<')
    {
        return Err(MrzError::BadCharacter { field: name });
    }
    Ok(format!("{value:<<len$}"))
}

/// Builds the two TD3 lines with all check digits.
pub fn td3(f: &Td3Fields<'_>) -> Result<[String; 2], MrzError> {
    let code = field(f.document_code, 2, "document code")?;
    let state = field(f.issuing_state, 3, "issuing state")?;
    let surname = mrz_name_part(f.surname);
    let given = mrz_name_part(f.given_names);
    let mut name = if given.is_empty() {
        surname
    } else {
        format!("{surname}<<{given}")
    };
    name.truncate(39);
    let line1 = format!("{code}{state}{}", field(&name, 39, "name")?);

    let number = field(f.document_number, 9, "document number")?;
    let number_cd = check_digit(&number)?;
    let nationality = field(f.nationality, 3, "nationality")?;
    let dob = f.date_of_birth.yymmdd();
    let dob_cd = check_digit(&dob)?;
    let expiry = f.expiry.yymmdd();
    let expiry_cd = check_digit(&expiry)?;
    let optional = field(f.optional_data, 14, "optional data")?;
    // An unused optional data field gets a filler check digit (ICAO 9303-4 §4.2.2.2).
    let optional_cd = if f.optional_data.is_empty() {
        '<'
    } else {
        check_digit(&optional)?
    };
    let composite_input =
        format!("{number}{number_cd}{dob}{dob_cd}{expiry}{expiry_cd}{optional}{optional_cd}");
    let composite_cd = check_digit(&composite_input)?;
    let line2 = format!(
        "{number}{number_cd}{nationality}{dob}{dob_cd}{}{expiry}{expiry_cd}{optional}{optional_cd}{composite_cd}",
        f.sex.mrz_char()
    );
    Ok([line1, line2])
}

/// The MRZ printed on the data page of a traveler's current passport, as the document
/// reader reads it optically. With `passport.mrz_corrupt` the document number's check
/// digit is wrong (see [`corrupt_check_digit`]); [`chip_mrz`] stays true.
pub fn traveler_mrz(t: &Traveler) -> Result<[String; 2], MrzError> {
    let mut lines = chip_mrz(t)?;
    if t.passport.mrz_corrupt {
        corrupt_check_digit(&mut lines);
    }
    Ok(lines)
}

/// Replaces the document number's check digit (line 2, position 10) with the next digit:
/// the MRZ then fails its check digits.
pub fn corrupt_check_digit(lines: &mut [String; 2]) {
    let line2 = &mut lines[1];
    if let Some(c) = line2.chars().nth(9) {
        let wrong = match c.to_digit(10) {
            Some(d) => char::from(b'0' + ((d + 1) % 10) as u8),
            None => '0',
        };
        line2.replace_range(9..10, wrong.encode_utf8(&mut [0; 4]));
    }
}

/// The true MRZ of a traveler's current passport, as written in the chip's DG1.
pub fn chip_mrz(t: &Traveler) -> Result<[String; 2], MrzError> {
    td3(&Td3Fields {
        document_code: "P",
        issuing_state: t.issuing_state(),
        surname: &t.surname,
        given_names: &t.given_names,
        document_number: &t.passport.number,
        nationality: &t.nationality,
        date_of_birth: t.date_of_birth,
        sex: t.sex,
        expiry: t.passport.expiry,
        optional_data: t.passport.personal_number.as_deref().unwrap_or(""),
    })
}

/// Verifies every check digit of a TD3 line 2 (test helper, also handy for clients).
pub fn verify_td3_line2(line2: &str) -> bool {
    let b = line2.as_bytes();
    if b.len() != 44 || !line2.is_ascii() {
        return false;
    }
    let cd = |range: std::ops::Range<usize>, at: usize| {
        check_digit(&line2[range])
            .map(|c| c as u8 == b[at])
            .unwrap_or(false)
    };
    let optional_ok = cd(28..42, 42) || (b[42] == b'<' && &line2[28..42] == "<<<<<<<<<<<<<<");
    let composite = format!("{}{}{}", &line2[0..10], &line2[13..20], &line2[21..43]);
    cd(0..9, 9)
        && cd(13..19, 19)
        && cd(21..27, 27)
        && optional_ok
        && check_digit(&composite)
            .map(|c| c as u8 == b[43])
            .unwrap_or(false)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::scenario::Scenario;

    #[test]
    fn a_corrupt_mrz_fails_its_check_digits_but_the_chip_keeps_the_true_one() {
        let s = Scenario::default_scenario().unwrap();
        let mut t = s.traveler("alice").unwrap().clone();
        let good = traveler_mrz(&t).unwrap();
        assert!(verify_td3_line2(&good[1]));
        t.passport.mrz_corrupt = true;
        let bad = traveler_mrz(&t).unwrap();
        assert!(!verify_td3_line2(&bad[1]));
        assert_eq!(bad[0], good[0]);
        assert_eq!(bad[1].len(), 44);
        let differing = (0..44).filter(|&i| bad[1].as_bytes()[i] != good[1].as_bytes()[i]);
        assert_eq!(differing.collect::<Vec<_>>(), vec![9]);
        assert_eq!(chip_mrz(&t).unwrap(), good);
    }

    #[test]
    fn check_digits_follow_icao_9303() {
        assert_eq!(check_digit("L898902C3"), Ok('6'));
        assert_eq!(check_digit("740812"), Ok('2'));
        assert_eq!(check_digit("120415"), Ok('9'));
        assert_eq!(check_digit("ZE184226B<<<<<"), Ok('1'));
        assert!(check_digit("abc").is_err());
    }

    #[test]
    fn the_icao_9303_part_4_specimen() {
        let lines = td3(&Td3Fields {
            document_code: "P",
            issuing_state: "UTO",
            surname: "Eriksson",
            given_names: "Anna Maria",
            document_number: "L898902C3",
            nationality: "UTO",
            date_of_birth: Date::new(1974, 8, 12).unwrap(),
            sex: Sex::Female,
            expiry: Date::new(2012, 4, 15).unwrap(),
            optional_data: "ZE184226B",
        })
        .unwrap();
        assert_eq!(lines[0], "P<UTOERIKSSON<<ANNA<MARIA<<<<<<<<<<<<<<<<<<<");
        assert_eq!(lines[1], "L898902C36UTO7408122F1204159ZE184226B<<<<<10");
        assert!(verify_td3_line2(&lines[1]));
    }

    #[test]
    fn every_scenario_traveler_has_a_valid_mrz() {
        let scenario = Scenario::default_scenario().unwrap();
        for t in &scenario.travelers {
            let [l1, l2] = traveler_mrz(t).unwrap();
            assert_eq!(l1.len(), 44, "{}", t.id);
            assert_eq!(l2.len(), 44, "{}", t.id);
            assert!(l1.starts_with("P<"));
            assert!(verify_td3_line2(&l2), "{}: {l2}", t.id);
        }
    }

    #[test]
    fn names_are_transliterated_and_truncated() {
        assert_eq!(mrz_name_part("o'Neil-smith  jr"), "ONEIL<SMITH<JR");
        let long = "A".repeat(60);
        let lines = td3(&Td3Fields {
            document_code: "P",
            issuing_state: "UTO",
            surname: &long,
            given_names: "X",
            document_number: "1",
            nationality: "UTO",
            date_of_birth: Date::new(2000, 1, 1).unwrap(),
            sex: Sex::Unspecified,
            expiry: Date::new(2030, 1, 1).unwrap(),
            optional_data: "",
        })
        .unwrap();
        assert_eq!(lines[0].len(), 44);
        assert!(verify_td3_line2(&lines[1]));
        assert_eq!(&lines[1][20..21], "<");
    }

    #[test]
    fn bad_fields_are_errors() {
        let f = Td3Fields {
            document_code: "P",
            issuing_state: "utopia",
            surname: "X",
            given_names: "Y",
            document_number: "1",
            nationality: "UTO",
            date_of_birth: Date::new(2000, 1, 1).unwrap(),
            sex: Sex::Male,
            expiry: Date::new(2030, 1, 1).unwrap(),
            optional_data: "",
        };
        assert!(td3(&f).is_err());
    }
}
