//! TLS for the QUIC endpoints: a self-signed server certificate made with rcgen, the server
//! and client rustls configurations (TLS 1.3 only, ALPN [`ALPN`], the `ring` provider), and
//! certificate pinning on the client.
//!
//! The client trusts exactly one certificate: the one whose SHA-256 fingerprint (of its DER
//! encoding) it was given. There is no "skip verification" option. The signature of the
//! handshake is still checked against the pinned certificate's key, so a peer that only
//! replays the certificate without its private key fails.

use std::sync::Arc;

use quinn::crypto::rustls::{QuicClientConfig, QuicServerConfig};
use rustls::DigitallySignedStruct;
use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::crypto::CryptoProvider;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer, ServerName, UnixTime};
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
}

impl std::fmt::Debug for Fingerprint {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Fingerprint({})", self.to_hex())
    }
}

/// A server certificate and its private key, both DER.
#[derive(Clone)]
pub struct ServerCert {
    /// The certificate, DER.
    pub cert_der: Vec<u8>,
    /// The private key, PKCS#8 DER.
    pub key_der: Vec<u8>,
}

impl std::fmt::Debug for ServerCert {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // The key is never printed.
        f.debug_struct("ServerCert")
            .field("fingerprint", &self.fingerprint())
            .finish_non_exhaustive()
    }
}

impl ServerCert {
    /// A new self-signed certificate for `names` (DNS names or IP addresses), with a fresh
    /// key pair (ECDSA P-256).
    pub fn self_signed(names: &[&str]) -> Result<Self, NetError> {
        let names: Vec<String> = names.iter().map(|s| (*s).to_owned()).collect();
        let certified = rcgen::generate_simple_self_signed(names)
            .map_err(|e| NetError::Tls(format!("certificate generation: {e}")))?;
        Ok(ServerCert {
            cert_der: certified.cert.der().to_vec(),
            key_der: certified.key_pair.serialize_der(),
        })
    }

    /// The SHA-256 fingerprint clients pin.
    #[must_use]
    pub fn fingerprint(&self) -> Fingerprint {
        Fingerprint::of(&self.cert_der)
    }
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
            vec![CertificateDer::from(cert.cert_der.clone())],
            PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(cert.key_der.clone())),
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

/// The rustls client configuration: TLS 1.3 only, ALPN [`ALPN`], trusting only the
/// certificate with fingerprint `pin`.
pub fn client_crypto(pin: Fingerprint) -> Result<rustls::ClientConfig, NetError> {
    let provider = provider();
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
pub fn quic_client_crypto(pin: Fingerprint) -> Result<Arc<QuicClientConfig>, NetError> {
    let config = QuicClientConfig::try_from(client_crypto(pin)?)
        .map_err(|e| NetError::Tls(format!("QUIC client crypto: {e}")))?;
    Ok(Arc::new(config))
}

/// Accepts exactly the pinned certificate (and no chain), and checks the handshake
/// signature with its key.
#[derive(Debug)]
struct PinnedCert {
    pin: Fingerprint,
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
        if Fingerprint::of(end_entity.as_ref()) == self.pin {
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
        let client = client_crypto(cert.fingerprint()).unwrap();
        assert_eq!(client.alpn_protocols, vec![ALPN.to_vec()]);
        quic_server_crypto(&cert).unwrap();
        quic_client_crypto(cert.fingerprint()).unwrap();
    }

    #[test]
    fn two_generated_certs_differ() {
        let a = ServerCert::self_signed(&["localhost"]).unwrap();
        let b = ServerCert::self_signed(&["localhost"]).unwrap();
        assert_ne!(a.fingerprint(), b.fingerprint());
        assert!(!format!("{a:?}").contains("key_der"));
    }
}
