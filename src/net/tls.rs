//! Mutual TLS 1.3 pinned to the roster's Ed25519 identity keys.
//!
//! Every node presents a self-signed certificate whose key *is* its identity key (made with
//! rcgen from the key itself). Nothing is trusted through a CA: the relay accepts a client only
//! if the certificate's key is in the roster, and a member accepts the server only if the key
//! equals the group file's relay key. The TLS handshake signature proves possession of the key.

use crate::crypto::identity::{IdentityKey, PublicKey};
use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::crypto::{CryptoProvider, WebPkiSupportedAlgorithms};
use rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer, ServerName, UnixTime};
use rustls::server::danger::{ClientCertVerified, ClientCertVerifier};
use rustls::{DigitallySignedStruct, DistinguishedName, SignatureScheme};
use std::sync::Arc;
use zeroize::Zeroize;

/// ALPN protocol id.
pub const ALPN: &[u8] = b"dcnet/1";

/// Start of the handshake error when the relay's certificate carries another key than the
/// group file's relay key.
pub const RELAY_KEY_MISMATCH: &str = "the relay's key differs from the group file";

/// PKCS#8 v1 prefix of an Ed25519 private key (RFC 8410 §7), followed by the 32-byte seed.
const PKCS8_ED25519: [u8; 16] = [
    0x30, 0x2e, 0x02, 0x01, 0x00, 0x30, 0x05, 0x06, 0x03, 0x2b, 0x65, 0x70, 0x04, 0x22, 0x04, 0x20,
];
/// SubjectPublicKeyInfo prefix of an Ed25519 key (RFC 8410 §4), followed by the 32-byte key.
const SPKI_ED25519: [u8; 12] = [
    0x30, 0x2a, 0x30, 0x05, 0x06, 0x03, 0x2b, 0x65, 0x70, 0x03, 0x21, 0x00,
];

fn provider() -> Arc<CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

/// A node's certificate chain and private key for TLS.
pub struct NodeCert {
    chain: Vec<CertificateDer<'static>>,
    key: PrivateKeyDer<'static>,
}

/// Builds the self-signed certificate carrying `key`.
pub fn node_cert(key: &IdentityKey) -> Result<NodeCert, String> {
    let mut secret = key.secret_bytes();
    let mut pkcs8 = PKCS8_ED25519.to_vec();
    pkcs8.extend_from_slice(&secret);
    secret.zeroize();
    let der = PrivatePkcs8KeyDer::from(pkcs8);
    let kp = rcgen::KeyPair::try_from(&der).map_err(|e| format!("key: {e}"))?;
    let params = rcgen::CertificateParams::new(vec!["dcnet".to_string()])
        .map_err(|e| format!("certificate: {e}"))?;
    let cert = params
        .self_signed(&kp)
        .map_err(|e| format!("certificate: {e}"))?;
    Ok(NodeCert {
        chain: vec![cert.der().clone()],
        key: PrivateKeyDer::Pkcs8(der),
    })
}

/// The Ed25519 key a certificate carries, if it carries one.
pub fn cert_key(cert: &CertificateDer<'_>) -> Option<PublicKey> {
    let ee = webpki::EndEntityCert::try_from(cert).ok()?;
    let spki = ee.subject_public_key_info();
    let b: &[u8] = spki.as_ref();
    let key = if b.len() == 44 && b[..12] == SPKI_ED25519 {
        &b[12..]
    } else if b.len() == 42 && b[..10] == SPKI_ED25519[2..] {
        &b[10..]
    } else {
        return None;
    };
    Some(PublicKey(key.try_into().ok()?))
}

fn algorithms() -> WebPkiSupportedAlgorithms {
    provider().signature_verification_algorithms
}

#[derive(Debug)]
struct PinnedRelay {
    relay: PublicKey,
}

impl ServerCertVerifier for PinnedRelay {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp: &[u8],
        _now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        match cert_key(end_entity) {
            Some(k) if k == self.relay => Ok(ServerCertVerified::assertion()),
            Some(k) => Err(rustls::Error::General(format!(
                "{RELAY_KEY_MISMATCH}: it presented {k}, the group file names {}",
                self.relay
            ))),
            None => Err(rustls::Error::General(format!(
                "{RELAY_KEY_MISMATCH}: it presented no Ed25519 key"
            ))),
        }
    }
    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(message, cert, dss, &algorithms())
    }
    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(message, cert, dss, &algorithms())
    }
    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        vec![SignatureScheme::ED25519]
    }
}

#[derive(Debug)]
struct RosterClients {
    keys: Vec<PublicKey>,
}

impl ClientCertVerifier for RosterClients {
    fn root_hint_subjects(&self) -> &[DistinguishedName] {
        &[]
    }
    fn verify_client_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _now: UnixTime,
    ) -> Result<ClientCertVerified, rustls::Error> {
        match cert_key(end_entity) {
            Some(k) if self.keys.contains(&k) => Ok(ClientCertVerified::assertion()),
            _ => Err(rustls::Error::General("key not in the roster".into())),
        }
    }
    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(message, cert, dss, &algorithms())
    }
    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(message, cert, dss, &algorithms())
    }
    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        vec![SignatureScheme::ED25519]
    }
}

fn transport() -> Arc<quinn::TransportConfig> {
    let mut t = quinn::TransportConfig::default();
    // A peer that vanished without closing (kill -9, network loss) is noticed within 4 s.
    t.keep_alive_interval(Some(std::time::Duration::from_secs(1)));
    if let Ok(idle) = quinn::IdleTimeout::try_from(std::time::Duration::from_secs(4)) {
        t.max_idle_timeout(Some(idle));
    }
    Arc::new(t)
}

/// The relay's QUIC server configuration: clients must present a roster key.
pub fn server_config(
    cert: NodeCert,
    roster: Vec<PublicKey>,
) -> Result<quinn::ServerConfig, String> {
    let mut tls = rustls::ServerConfig::builder_with_provider(provider())
        .with_protocol_versions(&[&rustls::version::TLS13])
        .map_err(|e| e.to_string())?
        .with_client_cert_verifier(Arc::new(RosterClients { keys: roster }))
        .with_single_cert(cert.chain, cert.key)
        .map_err(|e| e.to_string())?;
    tls.alpn_protocols = vec![ALPN.to_vec()];
    let q = quinn::crypto::rustls::QuicServerConfig::try_from(tls).map_err(|e| e.to_string())?;
    let mut c = quinn::ServerConfig::with_crypto(Arc::new(q));
    c.transport_config(transport());
    Ok(c)
}

/// A member's QUIC client configuration: the server must present the relay key.
pub fn client_config(cert: NodeCert, relay: PublicKey) -> Result<quinn::ClientConfig, String> {
    let mut tls = rustls::ClientConfig::builder_with_provider(provider())
        .with_protocol_versions(&[&rustls::version::TLS13])
        .map_err(|e| e.to_string())?
        .dangerous()
        .with_custom_certificate_verifier(Arc::new(PinnedRelay { relay }))
        .with_client_auth_cert(cert.chain, cert.key)
        .map_err(|e| e.to_string())?;
    tls.alpn_protocols = vec![ALPN.to_vec()];
    let q = quinn::crypto::rustls::QuicClientConfig::try_from(tls).map_err(|e| e.to_string())?;
    let mut c = quinn::ClientConfig::new(Arc::new(q));
    c.transport_config(transport());
    Ok(c)
}

/// The roster key of a connection's peer (after the verifiers above accepted it).
pub fn peer_key(conn: &quinn::Connection) -> Option<PublicKey> {
    let any = conn.peer_identity()?;
    let certs = any.downcast::<Vec<CertificateDer<'static>>>().ok()?;
    cert_key(certs.first()?)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn certificate_carries_the_identity_key() {
        let k = IdentityKey::from_secret_bytes(&[7; 32]);
        let c = node_cert(&k).unwrap();
        assert_eq!(cert_key(&c.chain[0]), Some(k.public()));
    }
}
