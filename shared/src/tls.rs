//! Certificates, fingerprints and the TLS configurations of Tether's two kinds of QUIC connection.
//!
//! - **Relay control** (client → relay): the client trusts the relay either by a pinned SHA-256 fingerprint
//!   (the relay's persisted self-signed certificate) or through the system's root certificates.
//! - **End to end** (viewer → host, through the relay): both sides present ephemeral self-signed
//!   certificates and each accepts *only* the fingerprint confirmed by the PAKE ([`crate::pake`]). The
//!   viewer is the QUIC client, the host the server; client authentication is mandatory.
//!
//! TLS 1.3 only, ring provider, no fallback of any kind: a verifier that does not see the pinned key
//! refuses the handshake.

use std::sync::{Arc, OnceLock};
use std::time::Duration;

use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::crypto::{verify_tls13_signature, CryptoProvider, WebPkiSupportedAlgorithms};
use rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer, ServerName, UnixTime};
use rustls::server::danger::{ClientCertVerified, ClientCertVerifier};
use rustls::{DigitallySignedStruct, DistinguishedName, SignatureScheme};
use sha2::{Digest, Sha256};

/// ALPN of the relay control protocol.
pub const ALPN_RELAY: &[u8] = b"tether-relay/1";
/// ALPN of the end-to-end session protocol.
pub const ALPN_E2E: &[u8] = b"tether-e2e/1";
/// Server name the viewer asks for on the end-to-end connection (only the pinned key matters).
pub const E2E_SERVER_NAME: &str = "host.tether.invalid";

/// SHA-256 of a certificate's DER encoding.
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct Fingerprint(pub [u8; 32]);

impl Fingerprint {
    pub fn of(cert_der: &[u8]) -> Self {
        Self(Sha256::digest(cert_der).into())
    }
}

impl std::fmt::Display for Fingerprint {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        self.0.iter().try_for_each(|b| write!(f, "{b:02x}"))
    }
}

impl std::fmt::Debug for Fingerprint {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Fingerprint({self})")
    }
}

/// A fingerprint that is not 64 hex digits (colons allowed between bytes).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("a fingerprint is 64 hexadecimal digits (SHA-256), optionally separated by colons")]
pub struct BadFingerprint;

impl std::str::FromStr for Fingerprint {
    type Err = BadFingerprint;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let hex: Vec<u8> = s.bytes().filter(|b| *b != b':').collect();
        if hex.len() != 64 {
            return Err(BadFingerprint);
        }
        let mut out = [0u8; 32];
        for (i, pair) in hex.chunks_exact(2).enumerate() {
            let text = std::str::from_utf8(pair).map_err(|_| BadFingerprint)?;
            out[i] = u8::from_str_radix(text, 16).map_err(|_| BadFingerprint)?;
        }
        Ok(Self(out))
    }
}

/// A certificate and its private key, plus any intermediate certificates served after it (a CA-issued
/// relay certificate needs them; self-signed ones have none).
pub struct Identity {
    pub cert: CertificateDer<'static>,
    key: PrivatePkcs8KeyDer<'static>,
    intermediates: Vec<CertificateDer<'static>>,
}

impl std::fmt::Debug for Identity {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Identity({})", self.fingerprint())
    }
}

#[derive(Debug, thiserror::Error)]
pub enum TlsError {
    #[error("could not make a certificate: {0}")]
    Generate(#[from] rcgen::Error),
    #[error("TLS configuration rejected: {0}")]
    Rustls(#[from] rustls::Error),
    #[error("no usable TLS 1.3 cipher suite for QUIC: {0}")]
    Quic(String),
    #[error("could not load the system's root certificates: {0}")]
    Roots(String),
}

impl Identity {
    /// A fresh self-signed certificate for `names` (ECDSA P-256).
    pub fn generate(names: &[&str]) -> Result<Self, TlsError> {
        let names: Vec<String> = names.iter().map(|n| n.to_string()).collect();
        let certified = rcgen::generate_simple_self_signed(names)?;
        Ok(Self {
            cert: certified.cert.der().clone(),
            key: PrivatePkcs8KeyDer::from(certified.signing_key.serialize_der()),
            intermediates: Vec::new(),
        })
    }

    /// Load from DER bytes (the relay keeps its certificate on disk).
    pub fn from_der(cert: Vec<u8>, key: Vec<u8>) -> Self {
        Self {
            cert: CertificateDer::from(cert),
            key: PrivatePkcs8KeyDer::from(key),
            intermediates: Vec::new(),
        }
    }

    /// Serve these intermediate certificates after the leaf (in chain order).
    pub fn with_intermediates(mut self, intermediates: Vec<Vec<u8>>) -> Self {
        self.intermediates = intermediates.into_iter().map(CertificateDer::from).collect();
        self
    }

    pub fn fingerprint(&self) -> Fingerprint {
        Fingerprint::of(&self.cert)
    }

    pub fn key_der(&self) -> &[u8] {
        self.key.secret_pkcs8_der()
    }

    fn key(&self) -> PrivateKeyDer<'static> {
        PrivateKeyDer::Pkcs8(self.key.clone_key())
    }
}

pub fn provider() -> Arc<CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

/// How a client trusts the relay's certificate.
#[derive(Debug, Clone)]
pub enum RelayTrust {
    /// Accept exactly this certificate (the relay prints its fingerprint on first start).
    Pinned(Fingerprint),
    /// The relay has a CA-issued certificate; verify it against the system roots.
    SystemRoots,
}

/// Accepts only a certificate with the pinned fingerprint; verifies TLS 1.3 signatures with its key.
#[derive(Debug)]
struct PinnedVerifier {
    pinned: Fingerprint,
    algorithms: WebPkiSupportedAlgorithms,
    /// The first certificate the other end presented, so a refusal can say what it was.
    presented: Arc<OnceLock<Fingerprint>>,
}

impl PinnedVerifier {
    fn new(pinned: Fingerprint) -> Arc<Self> {
        Self::noting(pinned, Arc::default())
    }

    fn noting(pinned: Fingerprint, presented: Arc<OnceLock<Fingerprint>>) -> Arc<Self> {
        Arc::new(Self { pinned, algorithms: provider().signature_verification_algorithms, presented })
    }

    fn check(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
    ) -> Result<(), rustls::Error> {
        let _ = self.presented.set(Fingerprint::of(end_entity));
        if intermediates.is_empty() && Fingerprint::of(end_entity) == self.pinned {
            Ok(())
        } else {
            Err(rustls::Error::InvalidCertificate(rustls::CertificateError::ApplicationVerificationFailure))
        }
    }

    fn verify13(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        verify_tls13_signature(message, cert, dss, &self.algorithms)
    }
}

impl ServerCertVerifier for PinnedVerifier {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp_response: &[u8],
        _now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        self.check(end_entity, intermediates).map(|()| ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        _message: &[u8],
        _cert: &CertificateDer<'_>,
        _dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        Err(rustls::Error::PeerIncompatible(rustls::PeerIncompatible::Tls12NotOffered))
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.verify13(message, cert, dss)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.algorithms.supported_schemes()
    }
}

impl ClientCertVerifier for PinnedVerifier {
    fn root_hint_subjects(&self) -> &[DistinguishedName] {
        &[]
    }

    fn verify_client_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        _now: UnixTime,
    ) -> Result<ClientCertVerified, rustls::Error> {
        self.check(end_entity, intermediates).map(|()| ClientCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        _message: &[u8],
        _cert: &CertificateDer<'_>,
        _dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        Err(rustls::Error::PeerIncompatible(rustls::PeerIncompatible::Tls12NotOffered))
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.verify13(message, cert, dss)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.algorithms.supported_schemes()
    }
}

fn quic_client(
    mut tls: rustls::ClientConfig,
    alpn: &[u8],
    transport: quinn::TransportConfig,
) -> Result<quinn::ClientConfig, TlsError> {
    tls.alpn_protocols = vec![alpn.to_vec()];
    let quic =
        quinn::crypto::rustls::QuicClientConfig::try_from(tls).map_err(|e| TlsError::Quic(e.to_string()))?;
    let mut cfg = quinn::ClientConfig::new(Arc::new(quic));
    cfg.transport_config(Arc::new(transport));
    Ok(cfg)
}

/// Quinn server config from a rustls config: TLS 1.3, our ALPN, the given transport.
pub fn quic_server(
    mut tls: rustls::ServerConfig,
    alpn: &[u8],
    transport: quinn::TransportConfig,
) -> Result<quinn::ServerConfig, TlsError> {
    tls.alpn_protocols = vec![alpn.to_vec()];
    tls.max_early_data_size = 0;
    let quic =
        quinn::crypto::rustls::QuicServerConfig::try_from(tls).map_err(|e| TlsError::Quic(e.to_string()))?;
    let mut cfg = quinn::ServerConfig::with_crypto(Arc::new(quic));
    cfg.transport_config(Arc::new(transport));
    Ok(cfg)
}

/// Client config for the control connection to the relay.
pub fn relay_client_config(
    trust: &RelayTrust,
    transport: quinn::TransportConfig,
) -> Result<quinn::ClientConfig, TlsError> {
    relay_client_config_noting(trust, transport, Arc::default())
}

/// [`relay_client_config`], noting in `presented` the certificate a pinned relay presented (so a refusal
/// can tell the person which certificate the relay has now).
pub fn relay_client_config_noting(
    trust: &RelayTrust,
    transport: quinn::TransportConfig,
    presented: Arc<OnceLock<Fingerprint>>,
) -> Result<quinn::ClientConfig, TlsError> {
    let builder = rustls::ClientConfig::builder_with_provider(provider())
        .with_protocol_versions(&[&rustls::version::TLS13])?;
    let tls = match trust {
        RelayTrust::Pinned(fp) => builder
            .dangerous()
            .with_custom_certificate_verifier(PinnedVerifier::noting(*fp, presented))
            .with_no_client_auth(),
        RelayTrust::SystemRoots => {
            let mut roots = rustls::RootCertStore::empty();
            let loaded = rustls_native_certs::load_native_certs();
            if loaded.certs.is_empty() {
                return Err(TlsError::Roots(format!("none found ({} errors)", loaded.errors.len())));
            }
            roots.add_parsable_certificates(loaded.certs);
            builder.with_root_certificates(roots).with_no_client_auth()
        }
    };
    quic_client(tls, ALPN_RELAY, transport)
}

/// The viewer's end-to-end client config: presents `ours`, accepts only `peer`.
pub fn e2e_client_config(
    ours: &Identity,
    peer: Fingerprint,
    transport: quinn::TransportConfig,
) -> Result<quinn::ClientConfig, TlsError> {
    let tls = rustls::ClientConfig::builder_with_provider(provider())
        .with_protocol_versions(&[&rustls::version::TLS13])?
        .dangerous()
        .with_custom_certificate_verifier(PinnedVerifier::new(peer))
        .with_client_auth_cert(vec![ours.cert.clone()], ours.key())?;
    quic_client(tls, ALPN_E2E, transport)
}

/// The host's end-to-end server config: presents `ours`, requires a client certificate equal to `peer`.
pub fn e2e_server_config(
    ours: &Identity,
    peer: Fingerprint,
    transport: quinn::TransportConfig,
) -> Result<quinn::ServerConfig, TlsError> {
    let tls = rustls::ServerConfig::builder_with_provider(provider())
        .with_protocol_versions(&[&rustls::version::TLS13])?
        .with_client_cert_verifier(PinnedVerifier::new(peer))
        .with_single_cert(vec![ours.cert.clone()], ours.key())?;
    quic_server(tls, ALPN_E2E, transport)
}

/// A server config presenting `ours` to any client (the relay's control endpoint).
pub fn open_server_config(
    ours: &Identity,
    transport: quinn::TransportConfig,
) -> Result<quinn::ServerConfig, TlsError> {
    let tls = rustls::ServerConfig::builder_with_provider(provider())
        .with_protocol_versions(&[&rustls::version::TLS13])?
        .with_no_client_auth()
        .with_single_cert(
            std::iter::once(&ours.cert).chain(&ours.intermediates).cloned().collect(),
            ours.key(),
        )?;
    quic_server(tls, ALPN_RELAY, transport)
}

/// Transport settings: idle timeout and keep-alive. `idle` also bounds how long a handshake may take.
pub fn transport(idle: Duration, keep_alive: Option<Duration>) -> quinn::TransportConfig {
    let mut t = quinn::TransportConfig::default();
    t.max_idle_timeout(quinn::IdleTimeout::try_from(idle).ok());
    t.keep_alive_interval(keep_alive);
    t
}

/// Flow-control windows of the end-to-end connection. quinn's defaults (1.25 MB per stream) assume
/// 100 ms at 100 Mbit/s; a file transfer stalls the stream while the receiver hashes and writes a 1 MiB
/// chunk, so the window must also cover that pause at ≥ 200 MB/s. A host and a viewer have one such
/// connection each, so the memory it may take is bounded by these.
pub const E2E_STREAM_WINDOW: u32 = 8 << 20;
/// The connection-wide receive window and the send buffer of the end-to-end connection.
pub const E2E_CONNECTION_WINDOW: u32 = 16 << 20;

/// Largest UDP payload path MTU discovery may find for the end-to-end connection.
///
/// quinn stops at 1452 bytes by default (Ethernet's 1500 less IP and UDP headers). Every packet costs
/// quinn, the crypto and the relay the same fixed work whatever its size, so where the path carries
/// bigger datagrams (loopback, a LAN with jumbo frames) bigger packets make a transfer cheaper and
/// faster (`docs/BENCHMARKS.md`). Raising the bound is safe on any path: discovery probes with
/// don't-fragment packets, a probe that does not arrive leaves the MTU where it was, and black-hole
/// detection falls back if the path shrinks later; the cost is a few probes after the handshake.
///
/// Two limits set the bound:
/// - quinn 0.11 does not exempt CONNECTION_CLOSE from congestion control while anything ack-eliciting
///   is pending (quinn issue #2785, fixed upstream in PR #2787 but not in a 0.11 release): a close is
///   held back for good once the packets in flight plus twice the packet size reach the window. Right
///   after the handshake the window is quinn's initial 14 720 bytes and a discovery probe may be in
///   flight, so three packets of the bound must fit in it, or a host closing a brand-new session (a
///   protocol error) is never heard and the viewer waits for its idle timeout. 6541-byte packets did
///   exactly that in `tests/tests/malformed.rs`. Remove this limit with a quinn that has the fix.
/// - quinn hands the socket up to 10 packets in one GSO send, each gets our 9-byte tag
///   ([`crate::packet::HEADER_LEN`]), and one GSO send must fit in one IPv4 UDP datagram (65 507 bytes).
pub const E2E_MTU_UPPER_BOUND: u16 = (QUINN_INITIAL_WINDOW / 3 - 1) as u16;
/// quinn's initial congestion window in bytes (`Cubic`'s default, also RFC 9002's for our packet sizes);
/// [`crate::link::cc::ShortQueue`] starts from it too.
pub(crate) const QUINN_INITIAL_WINDOW: usize = 14_720;
/// The most packets quinn 0.11 puts in one transmit (`MAX_TRANSMIT_SEGMENTS` in quinn's connection.rs).
const QUINN_GSO_SEGMENTS: usize = 10;
/// The largest UDP payload of an IPv4 datagram (65 535 less the IP and UDP headers).
const MAX_UDP_PAYLOAD_V4: usize = 65_507;
const _: () = assert!(
    QUINN_GSO_SEGMENTS * (E2E_MTU_UPPER_BOUND as usize + crate::packet::HEADER_LEN) <= MAX_UDP_PAYLOAD_V4
);

/// Transport settings of the end-to-end connection: [`transport`] plus windows sized for a fast
/// transfer ([`E2E_STREAM_WINDOW`], [`E2E_CONNECTION_WINDOW`]), path MTU discovery up to
/// [`E2E_MTU_UPPER_BOUND`], and the congestion controller that keeps the line's queue short
/// ([`crate::link::cc::ShortQueue`]; its smallest window, four packets, leaves room for the close of
/// quinn issue #2785 once what is in flight is acknowledged).
pub fn e2e_transport(idle: Duration, keep_alive: Option<Duration>) -> quinn::TransportConfig {
    let mut t = transport(idle, keep_alive);
    t.stream_receive_window(quinn::VarInt::from_u32(E2E_STREAM_WINDOW))
        .receive_window(quinn::VarInt::from_u32(E2E_CONNECTION_WINDOW))
        .send_window(u64::from(E2E_CONNECTION_WINDOW));
    let mut mtu = quinn::MtuDiscoveryConfig::default();
    mtu.upper_bound(E2E_MTU_UPPER_BOUND);
    t.mtu_discovery_config(Some(mtu));
    t.congestion_controller_factory(Arc::new(crate::link::cc::ShortQueueConfig::default()));
    t
}

/// Endpoint settings every Tether endpoint uses: no fixed-bit greasing, so the relay can tell QUIC
/// from tagged packets by the first byte ([`crate::packet`]), and datagrams up to
/// [`E2E_MTU_UPPER_BOUND`] accepted. quinn's default accepts 1472 bytes and tells the peer so, which
/// would stop path MTU discovery there; the price of the larger bound is quinn's receive buffer (the
/// bound × 64 GRO segments × 32 per batch: 13 MB instead of 3 MB per endpoint).
pub fn endpoint_config() -> quinn::EndpointConfig {
    let mut cfg = quinn::EndpointConfig::default();
    cfg.grease_quic_bit(false);
    if let Err(e) = cfg.max_udp_payload_size(E2E_MTU_UPPER_BOUND) {
        // Unreachable: the bound is within quinn's 1200..=65527; keeping quinn's default is still safe.
        tracing::warn!("max_udp_payload_size not set: {e}");
    }
    cfg
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fingerprint_parses_with_or_without_colons() {
        let id = Identity::generate(&["x.invalid"]).expect("cert");
        let fp = id.fingerprint();
        let plain = fp.to_string();
        assert_eq!(plain.len(), 64);
        assert_eq!(plain.parse::<Fingerprint>(), Ok(fp));
        let colons: Vec<String> = fp.0.iter().map(|b| format!("{b:02X}")).collect();
        assert_eq!(colons.join(":").parse::<Fingerprint>(), Ok(fp));
        assert_eq!("abc".parse::<Fingerprint>(), Err(BadFingerprint));
        assert_eq!("zz".repeat(32).parse::<Fingerprint>(), Err(BadFingerprint));
    }
}
