//! TLS for the QUIC endpoints: the server certificate (operator PEM files, or a self-signed
//! one made with rcgen and kept in a data directory), the server and client rustls
//! configurations (TLS 1.3 only, ALPN [`ALPN`], the `ring` provider), and how the client
//! trusts the server ([`ServerTrust`]).
//!
//! The client normally trusts exactly one certificate: the one whose SHA-256 fingerprint (of
//! its DER encoding) it was given ([`ServerTrust::Pinned`]). The signature of the handshake
//! is still checked against the pinned certificate's key, so a peer that only replays the
//! certificate without its private key fails. [`ServerTrust::DangerousSkipVerification`]
//! accepts any certificate: a development option only, which leaves the server
//! unauthenticated (anyone on the path can impersonate it) and warns on every connect.

use std::path::Path;
use std::sync::Arc;

use quinn::crypto::rustls::{QuicClientConfig, QuicServerConfig};
use rustls::DigitallySignedStruct;
use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::crypto::CryptoProvider;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{
    CertificateDer, PrivateKeyDer, PrivatePkcs1KeyDer, PrivatePkcs8KeyDer, PrivateSec1KeyDer,
    ServerName, UnixTime,
};
use sha2::{Digest, Sha256};

use crate::NetError;

/// The application protocol both ends announce.
pub const ALPN: &[u8] = b"mmo/1";

/// SHA-256 of a certificate's DER encoding.
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct Fingerprint(pub [u8; 32]);

impl Fingerprint {
    /// The fingerprint of `der`.
    #[must_use]
    pub fn of(der: &[u8]) -> Self {
        Fingerprint(Sha256::digest(der).into())
    }

    /// Lowercase hex, 64 characters (what an operator pastes into a client config).
    #[must_use]
    pub fn to_hex(&self) -> String {
        self.0.iter().map(|b| format!("{b:02x}")).collect()
    }

    /// Parses 64 hex digits (either case), optionally written as 32 colon-separated pairs
    /// (`AB:CD:...`, as `openssl x509 -fingerprint -sha256` prints). Surrounding whitespace
    /// is ignored.
    pub fn from_hex(text: &str) -> Result<Fingerprint, NetError> {
        let text = text.trim();
        let digits: String = if text.contains(':') {
            let pairs: Vec<&str> = text.split(':').collect();
            if pairs.len() != 32 || pairs.iter().any(|p| p.len() != 2) {
                return Err(NetError::Config(format!(
                    "fingerprint {text:?}: with ':' separators it must be 32 pairs of hex digits"
                )));
            }
            pairs.concat()
        } else {
            text.to_owned()
        };
        if digits.len() != 64 {
            return Err(NetError::Config(format!(
                "fingerprint {text:?}: expected 64 hex digits (SHA-256), got {} characters",
                digits.len()
            )));
        }
        if let Some(at) = digits.bytes().position(|c| !c.is_ascii_hexdigit()) {
            // `from_str_radix` alone would accept a sign ("+f").
            return Err(NetError::Config(format!(
                "fingerprint {text:?}: character {at} is not a hex digit (0-9, a-f, A-F)"
            )));
        }
        let mut bytes = [0u8; 32];
        for (i, byte) in bytes.iter_mut().enumerate() {
            // 64 ASCII hex digits, checked above: every pair parses.
            let pair = &digits[2 * i..2 * i + 2];
            *byte = u8::from_str_radix(pair, 16).map_err(|_| {
                NetError::Config(format!(
                    "fingerprint {text:?}: {pair:?} at digit {} is not hex",
                    2 * i
                ))
            })?;
        }
        Ok(Fingerprint(bytes))
    }
}

/// How a client decides that it is talking to the right server.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ServerTrust {
    /// Trust exactly the certificate with this SHA-256 fingerprint (and check that the
    /// server holds its key).
    Pinned(Fingerprint),
    /// Trust any certificate. DEVELOPMENT ONLY: the server is not authenticated, so anyone
    /// on the network path can impersonate it and read or change the traffic. Every connect
    /// with this option logs a warning.
    DangerousSkipVerification,
}

impl std::fmt::Debug for Fingerprint {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Fingerprint({})", self.to_hex())
    }
}

/// How a private key is encoded (its DER structure).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum KeyFormat {
    /// PKCS#8 `PrivateKeyInfo` (`BEGIN PRIVATE KEY`); what rcgen writes.
    Pkcs8,
    /// PKCS#1 `RSAPrivateKey` (`BEGIN RSA PRIVATE KEY`).
    Pkcs1,
    /// SEC1 `ECPrivateKey` (`BEGIN EC PRIVATE KEY`).
    Sec1,
}

/// A server certificate chain and its private key, all DER.
#[derive(Clone)]
pub struct ServerCert {
    /// The end-entity certificate, DER: the one clients pin.
    pub cert_der: Vec<u8>,
    /// The certificates after the end entity in the chain file, in file order (intermediates;
    /// empty for a self-signed certificate). Sent to clients with the end entity.
    pub chain_der: Vec<Vec<u8>>,
    /// The private key of `cert_der`, DER, encoded as `key_format` says.
    pub key_der: Vec<u8>,
    /// The encoding of `key_der`.
    pub key_format: KeyFormat,
}

impl std::fmt::Debug for ServerCert {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // The key is never printed.
        f.debug_struct("ServerCert")
            .field("fingerprint", &self.fingerprint())
            .field("chain_len", &self.chain_der.len())
            .finish_non_exhaustive()
    }
}

/// File name of the certificate chain [`ServerCert::load_or_generate`] keeps in its
/// directory.
pub const CERT_FILE_NAME: &str = "server.crt.pem";
/// File name of the private key [`ServerCert::load_or_generate`] keeps in its directory.
pub const KEY_FILE_NAME: &str = "server.key.pem";

impl ServerCert {
    /// A new self-signed certificate for `names` (DNS names or IP addresses), with a fresh
    /// key pair (ECDSA P-256).
    pub fn self_signed(names: &[&str]) -> Result<Self, NetError> {
        Ok(Self::generate(names)?.0)
    }

    /// A new self-signed certificate and the PEM text of the certificate and of the key.
    fn generate(names: &[&str]) -> Result<(Self, String, String), NetError> {
        let names: Vec<String> = names.iter().map(|s| (*s).to_owned()).collect();
        let certified = rcgen::generate_simple_self_signed(names)
            .map_err(|e| NetError::Tls(format!("certificate generation: {e}")))?;
        let cert = ServerCert {
            cert_der: certified.cert.der().to_vec(),
            chain_der: Vec::new(),
            key_der: certified.key_pair.serialize_der(),
            key_format: KeyFormat::Pkcs8,
        };
        Ok((
            cert,
            certified.cert.pem(),
            certified.key_pair.serialize_pem(),
        ))
    }

    /// Loads an operator-provided certificate chain and key (PEM). The first certificate of
    /// `cert_path` is the end entity (the one clients pin); the rest are sent as its chain.
    /// The key may be PKCS#8, PKCS#1 (RSA) or SEC1 (EC). Errors name the file and the
    /// problem; the key must also match the certificate (checked by building the TLS
    /// configuration).
    pub fn from_pem_files(cert_path: &Path, key_path: &Path) -> Result<ServerCert, NetError> {
        let mut certs = Vec::new();
        let iter = CertificateDer::pem_file_iter(cert_path)
            .map_err(|e| NetError::Tls(format!("certificate file {}: {e}", cert_path.display())))?;
        for cert in iter {
            let cert = cert.map_err(|e| {
                NetError::Tls(format!("certificate file {}: {e}", cert_path.display()))
            })?;
            certs.push(cert.as_ref().to_vec());
        }
        if certs.is_empty() {
            return Err(NetError::Tls(format!(
                "certificate file {}: no CERTIFICATE section found",
                cert_path.display()
            )));
        }
        let key = PrivateKeyDer::from_pem_file(key_path).map_err(|e| {
            let problem = match e {
                rustls::pki_types::pem::Error::NoItemsFound => {
                    "no PKCS#8, PKCS#1 (RSA) or SEC1 (EC) private key section found".to_owned()
                }
                other => other.to_string(),
            };
            NetError::Tls(format!("key file {}: {problem}", key_path.display()))
        })?;
        let (key_der, key_format) = match &key {
            PrivateKeyDer::Pkcs8(k) => (k.secret_pkcs8_der().to_vec(), KeyFormat::Pkcs8),
            PrivateKeyDer::Pkcs1(k) => (k.secret_pkcs1_der().to_vec(), KeyFormat::Pkcs1),
            PrivateKeyDer::Sec1(k) => (k.secret_sec1_der().to_vec(), KeyFormat::Sec1),
            _ => {
                return Err(NetError::Tls(format!(
                    "key file {}: unsupported private key encoding",
                    key_path.display()
                )));
            }
        };
        let end_entity = certs.remove(0);
        let cert = ServerCert {
            cert_der: end_entity,
            chain_der: certs,
            key_der,
            key_format,
        };
        // A key that does not belong to the certificate, or an algorithm ring cannot use,
        // fails here rather than at the first handshake.
        server_crypto(&cert).map_err(|e| {
            NetError::Tls(format!(
                "{} with {}: {e}",
                cert_path.display(),
                key_path.display()
            ))
        })?;
        Ok(cert)
    }

    /// The server's persistent identity in `data_dir`: loads `server.crt.pem` and
    /// `server.key.pem` ([`CERT_FILE_NAME`], [`KEY_FILE_NAME`]) when both exist; when
    /// neither exists, creates the directory, generates a self-signed certificate for
    /// `names` and writes both (the key with mode 0600 on unix). Logs the fingerprint
    /// clients must pin. One file without the other is an error (nothing is overwritten).
    pub fn load_or_generate(data_dir: &Path, names: &[&str]) -> Result<ServerCert, NetError> {
        let cert_path = data_dir.join(CERT_FILE_NAME);
        let key_path = data_dir.join(KEY_FILE_NAME);
        let cert = match (cert_path.exists(), key_path.exists()) {
            (true, true) => {
                let cert = Self::from_pem_files(&cert_path, &key_path)?;
                tracing::info!(path = %cert_path.display(), fingerprint = %cert.fingerprint().to_hex(), "server certificate loaded");
                cert
            }
            (false, false) => {
                let (cert, cert_pem, key_pem) = Self::generate(names)?;
                let io_error = |path: &Path, e: std::io::Error| {
                    NetError::Tls(format!("writing {}: {e}", path.display()))
                };
                std::fs::create_dir_all(data_dir).map_err(|e| io_error(data_dir, e))?;
                write_new_file(&key_path, key_pem.as_bytes(), 0o600)
                    .map_err(|e| io_error(&key_path, e))?;
                write_new_file(&cert_path, cert_pem.as_bytes(), 0o644)
                    .map_err(|e| io_error(&cert_path, e))?;
                tracing::info!(path = %cert_path.display(), fingerprint = %cert.fingerprint().to_hex(), "server certificate generated");
                cert
            }
            (true, false) => {
                return Err(NetError::Tls(format!(
                    "{} exists but {} does not: restore the key or remove both to generate a new identity",
                    cert_path.display(),
                    key_path.display()
                )));
            }
            (false, true) => {
                return Err(NetError::Tls(format!(
                    "{} exists but {} does not: restore the certificate or remove both to generate a new identity",
                    key_path.display(),
                    cert_path.display()
                )));
            }
        };
        Ok(cert)
    }

    /// The SHA-256 fingerprint clients pin.
    #[must_use]
    pub fn fingerprint(&self) -> Fingerprint {
        Fingerprint::of(&self.cert_der)
    }

    fn private_key(&self) -> PrivateKeyDer<'static> {
        let der = self.key_der.clone();
        match self.key_format {
            KeyFormat::Pkcs8 => PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(der)),
            KeyFormat::Pkcs1 => PrivateKeyDer::Pkcs1(PrivatePkcs1KeyDer::from(der)),
            KeyFormat::Sec1 => PrivateKeyDer::Sec1(PrivateSec1KeyDer::from(der)),
        }
    }
}

/// Creates `path` (failing if it exists) with unix permissions `mode`, and writes `bytes`.
fn write_new_file(path: &Path, bytes: &[u8], mode: u32) -> std::io::Result<()> {
    use std::io::Write;
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options.mode(mode);
    }
    #[cfg(not(unix))]
    let _ = mode;
    let mut file = options.open(path)?;
    file.write_all(bytes)?;
    file.sync_all()
}

fn provider() -> Arc<CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

/// The rustls server configuration: TLS 1.3 only, ALPN [`ALPN`], no client certificates.
pub fn server_crypto(cert: &ServerCert) -> Result<rustls::ServerConfig, NetError> {
    let mut config = rustls::ServerConfig::builder_with_provider(provider())
        .with_protocol_versions(&[&rustls::version::TLS13])
        .map_err(|e| NetError::Tls(e.to_string()))?
        .with_no_client_auth()
        .with_single_cert(
            std::iter::once(&cert.cert_der)
                .chain(&cert.chain_der)
                .map(|der| CertificateDer::from(der.clone()))
                .collect(),
            cert.private_key(),
        )
        .map_err(|e| NetError::Tls(format!("server certificate: {e}")))?;
    config.alpn_protocols = vec![ALPN.to_vec()];
    Ok(config)
}

/// The quinn server crypto over [`server_crypto`].
pub fn quic_server_crypto(cert: &ServerCert) -> Result<Arc<QuicServerConfig>, NetError> {
    let config = QuicServerConfig::try_from(server_crypto(cert)?)
        .map_err(|e| NetError::Tls(format!("QUIC server crypto: {e}")))?;
    Ok(Arc::new(config))
}

/// The rustls client configuration: TLS 1.3 only, ALPN [`ALPN`], trusting the server as
/// `trust` says.
pub fn client_crypto(trust: ServerTrust) -> Result<rustls::ClientConfig, NetError> {
    let provider = provider();
    let pin = match trust {
        ServerTrust::Pinned(pin) => Some(pin),
        ServerTrust::DangerousSkipVerification => None,
    };
    let mut config = rustls::ClientConfig::builder_with_provider(provider.clone())
        .with_protocol_versions(&[&rustls::version::TLS13])
        .map_err(|e| NetError::Tls(e.to_string()))?
        .dangerous() // A custom verifier: the pin below, not the web PKI.
        .with_custom_certificate_verifier(Arc::new(PinnedCert { pin, provider }))
        .with_no_client_auth();
    config.alpn_protocols = vec![ALPN.to_vec()];
    Ok(config)
}

/// The quinn client crypto over [`client_crypto`].
pub fn quic_client_crypto(trust: ServerTrust) -> Result<Arc<QuicClientConfig>, NetError> {
    let config = QuicClientConfig::try_from(client_crypto(trust)?)
        .map_err(|e| NetError::Tls(format!("QUIC client crypto: {e}")))?;
    Ok(Arc::new(config))
}

/// Accepts exactly the pinned certificate (any chain after it is ignored), or with no pin
/// any certificate, and checks the handshake signature with the certificate's key.
#[derive(Debug)]
struct PinnedCert {
    /// `None` only for [`ServerTrust::DangerousSkipVerification`].
    pin: Option<Fingerprint>,
    provider: Arc<CryptoProvider>,
}

impl ServerCertVerifier for PinnedCert {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp_response: &[u8],
        _now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        // The pin is the identity: the name and validity period of a self-signed
        // certificate the operator handed out add nothing.
        if self
            .pin
            .is_none_or(|pin| Fingerprint::of(end_entity.as_ref()) == pin)
        {
            Ok(ServerCertVerified::assertion())
        } else {
            Err(rustls::Error::InvalidCertificate(
                rustls::CertificateError::ApplicationVerificationFailure,
            ))
        }
    }

    fn verify_tls12_signature(
        &self,
        _message: &[u8],
        _cert: &CertificateDer<'_>,
        _dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        // Unreachable: only TLS 1.3 is offered.
        Err(rustls::Error::PeerIncompatible(
            rustls::PeerIncompatible::Tls12NotOffered,
        ))
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(
            message,
            cert,
            dss,
            &self.provider.signature_verification_algorithms,
        )
    }

    fn supported_verify_schemes(&self) -> Vec<rustls::SignatureScheme> {
        self.provider
            .signature_verification_algorithms
            .supported_schemes()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn self_signed_cert_has_a_stable_fingerprint_and_builds_both_configs() {
        let cert = ServerCert::self_signed(&["localhost", "127.0.0.1"]).unwrap();
        assert_eq!(cert.fingerprint(), Fingerprint::of(&cert.cert_der));
        assert_eq!(cert.fingerprint().to_hex().len(), 64);
        let server = server_crypto(&cert).unwrap();
        assert_eq!(server.alpn_protocols, vec![ALPN.to_vec()]);
        let client = client_crypto(ServerTrust::Pinned(cert.fingerprint())).unwrap();
        assert_eq!(client.alpn_protocols, vec![ALPN.to_vec()]);
        quic_server_crypto(&cert).unwrap();
        quic_client_crypto(ServerTrust::Pinned(cert.fingerprint())).unwrap();
        quic_client_crypto(ServerTrust::DangerousSkipVerification).unwrap();
    }

    #[test]
    fn two_generated_certs_differ() {
        let a = ServerCert::self_signed(&["localhost"]).unwrap();
        let b = ServerCert::self_signed(&["localhost"]).unwrap();
        assert_ne!(a.fingerprint(), b.fingerprint());
        assert!(!format!("{a:?}").contains("key_der"));
    }

    #[test]
    fn fingerprints_parse_from_hex_with_or_without_colons() {
        let cert = ServerCert::self_signed(&["localhost"]).unwrap();
        let fp = cert.fingerprint();
        let hex = fp.to_hex();
        assert_eq!(Fingerprint::from_hex(&hex).unwrap(), fp);
        assert_eq!(Fingerprint::from_hex(&hex.to_uppercase()).unwrap(), fp);
        let colons: Vec<String> = fp.0.iter().map(|b| format!("{b:02X}")).collect();
        assert_eq!(Fingerprint::from_hex(&colons.join(":")).unwrap(), fp);
        assert_eq!(Fingerprint::from_hex(&format!("  {hex}\n")).unwrap(), fp);
        let short = Fingerprint::from_hex(&hex[..62]).unwrap_err().to_string();
        assert!(short.contains("64 hex digits"), "{short}");
        let bad = format!("zz{}", &hex[2..]);
        let bad = Fingerprint::from_hex(&bad).unwrap_err().to_string();
        assert!(bad.contains("not a hex digit"), "{bad}");
        assert!(Fingerprint::from_hex(&format!("{}:{}", &hex[..32], &hex[32..])).is_err());
        assert!(Fingerprint::from_hex(&"é".repeat(32)).is_err());
    }

    /// A fresh, empty directory under the system temp dir.
    fn temp_dir(name: &str) -> std::path::PathBuf {
        let dir = std::env::temp_dir().join(format!("mmo-net-tls-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        dir
    }

    #[test]
    fn load_or_generate_writes_once_then_loads_the_same_identity() {
        let dir = temp_dir("persist").join("nested");
        let first = ServerCert::load_or_generate(&dir, &["localhost"]).unwrap();
        assert!(dir.join(CERT_FILE_NAME).exists());
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(dir.join(KEY_FILE_NAME))
                .unwrap()
                .permissions()
                .mode();
            assert_eq!(mode & 0o777, 0o600);
        }
        let second = ServerCert::load_or_generate(&dir, &["localhost"]).unwrap();
        assert_eq!(first.fingerprint(), second.fingerprint());
        assert_eq!(first.key_der, second.key_der);
        assert_eq!(second.key_format, KeyFormat::Pkcs8);
        quic_server_crypto(&second).unwrap();

        // Half an identity is refused, naming the missing file.
        std::fs::remove_file(dir.join(KEY_FILE_NAME)).unwrap();
        let err = ServerCert::load_or_generate(&dir, &["localhost"])
            .unwrap_err()
            .to_string();
        assert!(err.contains(KEY_FILE_NAME), "{err}");
        let _ = std::fs::remove_dir_all(dir.parent().unwrap());
    }

    #[test]
    fn pem_files_keep_the_chain_and_report_bad_files_by_name() {
        let dir = temp_dir("pem");
        std::fs::create_dir_all(&dir).unwrap();
        let leaf = rcgen::generate_simple_self_signed(vec!["localhost".to_owned()]).unwrap();
        let other = rcgen::generate_simple_self_signed(vec!["ca".to_owned()]).unwrap();
        let cert_path = dir.join("chain.pem");
        let key_path = dir.join("key.pem");
        std::fs::write(
            &cert_path,
            format!("{}{}", leaf.cert.pem(), other.cert.pem()),
        )
        .unwrap();
        std::fs::write(&key_path, leaf.key_pair.serialize_pem()).unwrap();
        let cert = ServerCert::from_pem_files(&cert_path, &key_path).unwrap();
        assert_eq!(cert.cert_der, leaf.cert.der().to_vec());
        assert_eq!(cert.chain_der, vec![other.cert.der().to_vec()]);

        // A key that is not the certificate's.
        let wrong_key = dir.join("wrong.pem");
        std::fs::write(&wrong_key, other.key_pair.serialize_pem()).unwrap();
        let err = ServerCert::from_pem_files(&cert_path, &wrong_key)
            .unwrap_err()
            .to_string();
        assert!(err.contains("wrong.pem"), "{err}");

        // No key at all, no certificate at all, a missing file.
        let err = ServerCert::from_pem_files(&cert_path, &cert_path)
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("chain.pem") && err.contains("private key"),
            "{err}"
        );
        let err = ServerCert::from_pem_files(&key_path, &key_path)
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("key.pem") && err.contains("CERTIFICATE"),
            "{err}"
        );
        let missing = dir.join("missing.pem");
        let err = ServerCert::from_pem_files(&missing, &key_path)
            .unwrap_err()
            .to_string();
        assert!(err.contains("missing.pem"), "{err}");
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn sec1_and_pkcs8_keys_are_recognised() {
        let dir = temp_dir("sec1");
        std::fs::create_dir_all(&dir).unwrap();
        let leaf = rcgen::generate_simple_self_signed(vec!["localhost".to_owned()]).unwrap();
        let cert_path = dir.join("cert.pem");
        std::fs::write(&cert_path, leaf.cert.pem()).unwrap();
        // The SEC1 form of a P-256 PKCS#8 key: its inner ECPrivateKey, re-wrapped in PEM.
        let pkcs8 = leaf.key_pair.serialize_der();
        let sec1 = sec1_of_p256_pkcs8(&pkcs8);
        let key_path = dir.join("ec.pem");
        std::fs::write(&key_path, pem_wrap("EC PRIVATE KEY", &sec1)).unwrap();
        let cert = ServerCert::from_pem_files(&cert_path, &key_path).unwrap();
        assert_eq!(cert.key_format, KeyFormat::Sec1);
        let _ = std::fs::remove_dir_all(&dir);
    }

    /// The `ECPrivateKey` inside a PKCS#8 `PrivateKeyInfo` made by rcgen for P-256: the
    /// content of the OCTET STRING that is the third element.
    fn sec1_of_p256_pkcs8(pkcs8: &[u8]) -> Vec<u8> {
        // SEQUENCE { INTEGER 0, SEQUENCE { ecPublicKey, prime256v1 }, OCTET STRING {..} }
        let mut i = 2; // outer SEQUENCE tag and short length (rcgen's key is < 128 bytes)
        if pkcs8[1] & 0x80 != 0 {
            i += usize::from(pkcs8[1] & 0x7f);
        }
        i += 3; // INTEGER 0
        let alg_len = usize::from(pkcs8[i + 1]);
        i += 2 + alg_len;
        assert_eq!(pkcs8[i], 0x04, "OCTET STRING");
        let (len, header) = if pkcs8[i + 1] & 0x80 == 0 {
            (usize::from(pkcs8[i + 1]), 2)
        } else {
            (usize::from(pkcs8[i + 2]), 3)
        };
        pkcs8[i + header..i + header + len].to_vec()
    }

    fn pem_wrap(label: &str, der: &[u8]) -> String {
        const B64: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
        let mut text = String::new();
        for chunk in der.chunks(3) {
            let b = [
                chunk[0],
                *chunk.get(1).unwrap_or(&0),
                *chunk.get(2).unwrap_or(&0),
            ];
            let n = (u32::from(b[0]) << 16) | (u32::from(b[1]) << 8) | u32::from(b[2]);
            for k in 0..4 {
                if k <= chunk.len() {
                    text.push(B64[((n >> (18 - 6 * k)) & 63) as usize] as char);
                } else {
                    text.push('=');
                }
            }
        }
        let body: Vec<String> = text
            .as_bytes()
            .chunks(64)
            .map(|c| String::from_utf8(c.to_vec()).unwrap())
            .collect();
        format!(
            "-----BEGIN {label}-----\n{}\n-----END {label}-----\n",
            body.join("\n")
        )
    }
}
