//! Mailbox credentials: salted, iterated password hashes plus the optional
//! MESH shared secret.
//!
//! # Hashing
//!
//! Passwords are stored as PBKDF2-HMAC-SHA256 with a 16-byte salt and a
//! 32-byte derived key. The salt comes from a caller-supplied
//! [`RandomSource`] (this crate never reads OS randomness), so a simulation
//! seeded the same way builds byte-identical directories. The iteration count
//! is configurable: [`DEFAULT_HASH_ITERATIONS`] for real deployments, down to
//! [`MIN_HASH_ITERATIONS`] (1) so a simulation can load 26,000 mailboxes in
//! milliseconds. It is capped at [`MAX_HASH_ITERATIONS`] so a hand-edited
//! directory cannot make every login burn seconds of CPU.
//!
//! The portable text form is `pbkdf2-sha256$<iterations>$<salt hex>$<hash hex>`
//! ([`Credential::to_hash_string`], [`Credential::from_hash_string`]).
//!
//! Verification compares derived keys with [`subtle::ConstantTimeEq`], so the
//! time taken does not reveal how many leading bytes matched.
//!
//! # Why the plaintext is sometimes kept ([`MeshSecret`])
//!
//! MESH clients authenticate with an `NHSMESH` `Authorization` header whose
//! last field is an HMAC-SHA256 over a string that *contains the mailbox
//! password in plaintext*. To check that header the server must recompute the
//! HMAC, which is impossible from a one-way hash. So when the directory file
//! supplies a plaintext `password`, the credential keeps it as a
//! [`MeshSecret`] next to the hash; when the file supplies only a
//! `password_hash`, there is no secret and `NHSMESH` header authentication is
//! unavailable for that mailbox (password verification still works).
//!
//! Invariants that keep the secret out of logs: [`MeshSecret`] has no
//! `Display`, its `Debug` prints `MeshSecret(<redacted>)`, and the `Debug` of
//! [`Credential`] prints neither the hash, the salt nor the secret. The only
//! way to read the plaintext is the deliberately named
//! [`MeshSecret::expose_secret`]. (The memory is not zeroised on drop; that
//! would need a `zeroize` dependency.)

use std::fmt;

use sha2::Sha256;
use subtle::ConstantTimeEq;

use crate::random::RandomSource;
use crate::ErrorCode;

/// Iterations used when the operator does not choose a count.
pub const DEFAULT_HASH_ITERATIONS: u32 = 10_000;
/// Smallest accepted iteration count (useful for fast simulations only).
pub const MIN_HASH_ITERATIONS: u32 = 1;
/// Largest accepted iteration count; bounds the CPU cost of one login.
pub const MAX_HASH_ITERATIONS: u32 = 10_000_000;
/// Salt length in bytes.
pub const SALT_LEN: usize = 16;
/// Derived-key length in bytes.
pub const HASH_LEN: usize = 32;
/// Scheme tag that starts every hash string.
pub const HASH_SCHEME: &str = "pbkdf2-sha256";

/// Why a credential could not be built or parsed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CredentialError {
    /// The plaintext password was empty.
    #[error("password is empty; give the mailbox a non-empty password")]
    PasswordEmpty,
    /// The iteration count is outside the accepted range.
    #[error(
        "hash iterations {iterations} out of range; use {MIN_HASH_ITERATIONS}..={MAX_HASH_ITERATIONS} (default {DEFAULT_HASH_ITERATIONS})"
    )]
    IterationsOutOfRange {
        /// The rejected count.
        iterations: u64,
    },
    /// The hash string does not have four `$`-separated parts.
    #[error(
        "password hash has {parts} '$'-separated part(s), expected 4: {HASH_SCHEME}$<iterations>$<salt hex>$<hash hex>"
    )]
    HashMalformed {
        /// Number of parts found.
        parts: usize,
    },
    /// The hash string names a scheme other than [`HASH_SCHEME`].
    #[error("password hash scheme {found:?} is not supported; only {HASH_SCHEME:?} is")]
    HashSchemeUnsupported {
        /// The scheme found (truncated to 32 characters).
        found: String,
    },
    /// The iterations part is not a decimal number.
    #[error(
        "password hash iterations {found:?} is not a decimal number; write e.g. {HASH_SCHEME}${DEFAULT_HASH_ITERATIONS}$..."
    )]
    HashIterationsInvalid {
        /// The text found (truncated to 32 characters).
        found: String,
    },
    /// The salt part is not exactly [`SALT_LEN`] bytes of hex.
    #[error("password hash salt must be {} hex digits ({SALT_LEN} bytes)", SALT_LEN * 2)]
    HashSaltInvalid,
    /// The hash part is not exactly [`HASH_LEN`] bytes of hex.
    #[error("password hash digest must be {} hex digits ({HASH_LEN} bytes)", HASH_LEN * 2)]
    HashDigestInvalid,
}

impl ErrorCode for CredentialError {
    fn code(&self) -> &'static str {
        match self {
            Self::PasswordEmpty => "DIR_PASSWORD_EMPTY",
            Self::IterationsOutOfRange { .. } | Self::HashIterationsInvalid { .. } => {
                "DIR_HASH_ITERATIONS_INVALID"
            }
            Self::HashMalformed { .. } => "DIR_HASH_MALFORMED",
            Self::HashSchemeUnsupported { .. } => "DIR_HASH_SCHEME_UNSUPPORTED",
            Self::HashSaltInvalid => "DIR_HASH_SALT_INVALID",
            Self::HashDigestInvalid => "DIR_HASH_DIGEST_INVALID",
        }
    }
}

/// The plaintext mailbox password, kept only so the server can check MESH's
/// `NHSMESH` HMAC header. Never printed: `Debug` is redacted and there is no
/// `Display`.
#[derive(Clone)]
pub struct MeshSecret(String);

impl MeshSecret {
    /// The plaintext password. Named loudly so every use is easy to audit.
    pub fn expose_secret(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for MeshSecret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("MeshSecret(<redacted>)")
    }
}

/// A mailbox's stored credential: PBKDF2 hash plus, optionally, the
/// [`MeshSecret`].
#[derive(Clone)]
pub struct Credential {
    iterations: u32,
    salt: [u8; SALT_LEN],
    hash: [u8; HASH_LEN],
    mesh_secret: Option<MeshSecret>,
}

impl Credential {
    /// Hashes `password` with a fresh salt drawn from `rng`, keeping the
    /// plaintext as the [`MeshSecret`].
    pub fn from_password(
        password: &str,
        rng: &mut dyn RandomSource,
        iterations: u32,
    ) -> Result<Credential, CredentialError> {
        if password.is_empty() {
            return Err(CredentialError::PasswordEmpty);
        }
        check_iterations(iterations)?;
        let mut salt = [0u8; SALT_LEN];
        rng.fill_bytes(&mut salt);
        Ok(Credential {
            iterations,
            salt,
            hash: derive(password, &salt, iterations),
            mesh_secret: Some(MeshSecret(password.to_owned())),
        })
    }

    /// Parses `pbkdf2-sha256$<iterations>$<salt hex>$<hash hex>`. The result
    /// has no [`MeshSecret`].
    pub fn from_hash_string(s: &str) -> Result<Credential, CredentialError> {
        let parts: Vec<&str> = s.trim().split('$').collect();
        let [scheme, iterations, salt, hash] = parts.as_slice() else {
            return Err(CredentialError::HashMalformed { parts: parts.len() });
        };
        if *scheme != HASH_SCHEME {
            return Err(CredentialError::HashSchemeUnsupported {
                found: truncate(scheme),
            });
        }
        let iterations =
            parse_decimal(iterations).ok_or_else(|| CredentialError::HashIterationsInvalid {
                found: truncate(iterations),
            })?;
        let iterations = u32::try_from(iterations)
            .map_err(|_| CredentialError::IterationsOutOfRange { iterations })?;
        check_iterations(iterations)?;
        let mut salt_bytes = [0u8; SALT_LEN];
        hex::decode_to_slice(salt, &mut salt_bytes)
            .map_err(|_| CredentialError::HashSaltInvalid)?;
        let mut hash_bytes = [0u8; HASH_LEN];
        hex::decode_to_slice(hash, &mut hash_bytes)
            .map_err(|_| CredentialError::HashDigestInvalid)?;
        Ok(Credential {
            iterations,
            salt: salt_bytes,
            hash: hash_bytes,
            mesh_secret: None,
        })
    }

    /// A credential that no real password is expected to match, with the
    /// given cost. Verifying against it lets a failed lookup take as long as
    /// a real check, so timing does not reveal which mailboxes exist.
    pub(crate) fn decoy(iterations: u32) -> Credential {
        Credential {
            iterations: iterations.clamp(MIN_HASH_ITERATIONS, MAX_HASH_ITERATIONS),
            salt: [0u8; SALT_LEN],
            hash: [0u8; HASH_LEN],
            mesh_secret: None,
        }
    }

    /// The portable text form (lower-case hex). Does not include the
    /// [`MeshSecret`].
    pub fn to_hash_string(&self) -> String {
        format!(
            "{HASH_SCHEME}${}${}${}",
            self.iterations,
            hex::encode(self.salt),
            hex::encode(self.hash)
        )
    }

    /// True when `password` matches. The final comparison is constant-time.
    pub fn verify(&self, password: &str) -> bool {
        let candidate = derive(password, &self.salt, self.iterations);
        bool::from(candidate.ct_eq(&self.hash))
    }

    /// The PBKDF2 iteration count.
    pub fn iterations(&self) -> u32 {
        self.iterations
    }

    /// The plaintext secret for `NHSMESH` header checks, when the directory
    /// supplied a plaintext password.
    pub fn mesh_secret(&self) -> Option<&MeshSecret> {
        self.mesh_secret.as_ref()
    }
}

impl fmt::Debug for Credential {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Credential")
            .field("scheme", &HASH_SCHEME)
            .field("iterations", &self.iterations)
            .field("has_mesh_secret", &self.mesh_secret.is_some())
            .finish_non_exhaustive()
    }
}

fn derive(password: &str, salt: &[u8; SALT_LEN], iterations: u32) -> [u8; HASH_LEN] {
    pbkdf2::pbkdf2_hmac_array::<Sha256, HASH_LEN>(password.as_bytes(), salt, iterations)
}

/// Ok when `iterations` is within [`MIN_HASH_ITERATIONS`]..=[`MAX_HASH_ITERATIONS`].
pub(crate) fn check_iterations(iterations: u32) -> Result<(), CredentialError> {
    if (MIN_HASH_ITERATIONS..=MAX_HASH_ITERATIONS).contains(&iterations) {
        Ok(())
    } else {
        Err(CredentialError::IterationsOutOfRange {
            iterations: u64::from(iterations),
        })
    }
}

/// Strict decimal: ASCII digits only (no sign, no spaces), at most 19 digits.
fn parse_decimal(s: &str) -> Option<u64> {
    if s.is_empty() || s.len() > 19 || !s.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    s.parse().ok()
}

/// Echo at most 32 characters of untrusted input in an error message.
fn truncate(s: &str) -> String {
    s.chars().take(32).collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::random::SeededRandom;

    fn rng() -> SeededRandom {
        SeededRandom::new(7)
    }

    #[test]
    fn password_round_trip_verifies() {
        let c = Credential::from_password("password", &mut rng(), 5).unwrap();
        assert!(c.verify("password"));
        assert!(!c.verify("Password"));
        assert!(!c.verify(""));
        assert_eq!(c.iterations(), 5);
        assert_eq!(c.mesh_secret().unwrap().expose_secret(), "password");
    }

    #[test]
    fn hash_string_round_trip_keeps_verification_but_drops_secret() {
        let c = Credential::from_password("s3cret", &mut rng(), 3).unwrap();
        let s = c.to_hash_string();
        let parsed = Credential::from_hash_string(&s).unwrap();
        assert!(parsed.verify("s3cret"));
        assert!(!parsed.verify("s3cre"));
        assert!(parsed.mesh_secret().is_none());
        assert_eq!(parsed.to_hash_string(), s);
    }

    /// Known-answer test: RFC 7914 section 11 PBKDF2-HMAC-SHA256 vector
    /// (P="passwd", S="salt", c=1), first 32 bytes. Salt is 4 bytes there, so
    /// check the primitive directly.
    #[test]
    fn pbkdf2_matches_rfc_7914_vector() {
        let out = pbkdf2::pbkdf2_hmac_array::<Sha256, 32>(b"passwd", b"salt", 1);
        assert_eq!(
            hex::encode(out),
            "55ac046e56e3089fec1691c22544b605f94185216dde0465e68b9d57c20dacbc"
        );
    }

    /// Pinned: a stored hash string produced once stays valid forever.
    #[test]
    fn pinned_hash_string_verifies() {
        let salt = [0x11u8; SALT_LEN];
        let hash = derive("password", &salt, 2);
        let s = format!(
            "pbkdf2-sha256$2${}${}",
            hex::encode(salt),
            hex::encode(hash)
        );
        let c = Credential::from_hash_string(&s).unwrap();
        assert!(c.verify("password"));
        assert_eq!(c.to_hash_string(), s);
    }

    #[test]
    fn salts_differ_between_credentials() {
        let mut r = rng();
        let a = Credential::from_password("password", &mut r, 1).unwrap();
        let b = Credential::from_password("password", &mut r, 1).unwrap();
        assert_ne!(a.to_hash_string(), b.to_hash_string());
        assert!(a.verify("password") && b.verify("password"));
    }

    #[test]
    fn same_seed_same_hash() {
        let a = Credential::from_password("pw", &mut SeededRandom::new(1), 1).unwrap();
        let b = Credential::from_password("pw", &mut SeededRandom::new(1), 1).unwrap();
        assert_eq!(a.to_hash_string(), b.to_hash_string());
    }

    #[test]
    fn iteration_bounds() {
        let e = Credential::from_password("pw", &mut rng(), 0).unwrap_err();
        assert_eq!(e.code(), "DIR_HASH_ITERATIONS_INVALID");
        let e = Credential::from_password("pw", &mut rng(), MAX_HASH_ITERATIONS + 1).unwrap_err();
        assert_eq!(e.code(), "DIR_HASH_ITERATIONS_INVALID");
        assert!(Credential::from_password("pw", &mut rng(), MIN_HASH_ITERATIONS).is_ok());
    }

    #[test]
    fn empty_password_refused() {
        let e = Credential::from_password("", &mut rng(), 1).unwrap_err();
        assert_eq!(e.code(), "DIR_PASSWORD_EMPTY");
    }

    #[test]
    fn hash_string_errors_are_specific() {
        let salt = "00".repeat(SALT_LEN);
        let hash = "00".repeat(HASH_LEN);
        let cases = [
            ("", "DIR_HASH_MALFORMED"),
            ("pbkdf2-sha256$1$00", "DIR_HASH_MALFORMED"),
            (
                &format!("pbkdf2-sha256$1${salt}${hash}$x"),
                "DIR_HASH_MALFORMED",
            ),
            (
                &format!("bcrypt$1${salt}${hash}"),
                "DIR_HASH_SCHEME_UNSUPPORTED",
            ),
            (
                &format!("pbkdf2-sha256$x${salt}${hash}"),
                "DIR_HASH_ITERATIONS_INVALID",
            ),
            (
                &format!("pbkdf2-sha256$+5${salt}${hash}"),
                "DIR_HASH_ITERATIONS_INVALID",
            ),
            (
                &format!("pbkdf2-sha256$0${salt}${hash}"),
                "DIR_HASH_ITERATIONS_INVALID",
            ),
            (
                &format!("pbkdf2-sha256$99999999999${salt}${hash}"),
                "DIR_HASH_ITERATIONS_INVALID",
            ),
            (
                &format!("pbkdf2-sha256$1$00${hash}"),
                "DIR_HASH_SALT_INVALID",
            ),
            (
                &format!("pbkdf2-sha256$1${}${hash}", "zz".repeat(16)),
                "DIR_HASH_SALT_INVALID",
            ),
            (
                &format!("pbkdf2-sha256$1${salt}$00"),
                "DIR_HASH_DIGEST_INVALID",
            ),
            (
                &format!("pbkdf2-sha256$1${salt}${hash}00"),
                "DIR_HASH_DIGEST_INVALID",
            ),
        ];
        for (input, code) in cases {
            let e = Credential::from_hash_string(input).unwrap_err();
            assert_eq!(e.code(), code, "input {input:?}: {e}");
            assert!(!e.to_string().is_empty());
        }
    }

    #[test]
    fn upper_case_hex_accepted() {
        let c = Credential::from_password("pw", &mut rng(), 1).unwrap();
        let upper = c
            .to_hash_string()
            .replace("pbkdf2-sha256", "")
            .to_uppercase();
        let parsed = Credential::from_hash_string(&format!("pbkdf2-sha256{upper}")).unwrap();
        assert!(parsed.verify("pw"));
    }

    #[test]
    fn debug_never_prints_secret_or_hash() {
        let c = Credential::from_password("hunter2-secret", &mut rng(), 1).unwrap();
        let hash_hex = c.to_hash_string();
        let digest = hash_hex.rsplit('$').next().unwrap();
        let salt = hash_hex.split('$').nth(2).unwrap();
        let dbg = format!("{c:?} {:?} {:#?}", c.mesh_secret().unwrap(), c);
        assert!(!dbg.contains("hunter2"), "{dbg}");
        assert!(!dbg.contains(digest), "{dbg}");
        assert!(!dbg.contains(salt), "{dbg}");
        assert!(dbg.contains("MeshSecret(<redacted>)"));
    }

    #[test]
    fn decoy_rejects_ordinary_passwords() {
        let d = Credential::decoy(0);
        assert_eq!(d.iterations(), MIN_HASH_ITERATIONS);
        assert!(!d.verify("password"));
        assert!(!d.verify(""));
    }

    proptest::proptest! {
        #[test]
        fn verify_accepts_only_the_password(pw in "[ -~]{1,24}", other in "[ -~]{1,24}") {
            let c = Credential::from_password(&pw, &mut rng(), 1).unwrap();
            proptest::prop_assert!(c.verify(&pw));
            proptest::prop_assert_eq!(c.verify(&other), other == pw);
        }

        #[test]
        fn hash_string_parser_never_panics(s in "\\PC{0,120}") {
            let _ = Credential::from_hash_string(&s);
        }
    }
}
