//! A throwaway certificate authority for the HTTPS tests: real X.509
//! certificates (rcgen), a CA file the host is told to trust through
//! `SSL_CERT_FILE` (honoured by rustls-native-certs), and a rustls server
//! configuration for [`crate::http_server::TestServer::start_tls`].

use std::path::PathBuf;
use std::sync::Arc;

use rcgen::{BasicConstraints, CertificateParams, IsCa, Issuer, KeyPair};
use rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer};

/// A CA with its certificate written to `ca_file`.
pub struct TestCa {
    issuer: Issuer<'static, KeyPair>,
    ca_der: CertificateDer<'static>,
    /// PEM of the CA certificate, for `SSL_CERT_FILE`.
    pub ca_file: PathBuf,
    _dir: tempfile::TempDir,
}

impl std::fmt::Debug for TestCa {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TestCa").field("ca_file", &self.ca_file).finish_non_exhaustive()
    }
}

impl TestCa {
    pub fn new() -> Self {
        let key = KeyPair::generate().expect("generate the CA key");
        let mut params = CertificateParams::new(Vec::<String>::new()).expect("CA params");
        params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        params.distinguished_name.push(rcgen::DnType::CommonName, "backout test CA");
        let cert = params.self_signed(&key).expect("self-sign the CA");
        let dir = tempfile::tempdir().expect("temp dir for the CA");
        let ca_file = dir.path().join("ca.pem");
        std::fs::write(&ca_file, cert.pem()).expect("write ca.pem");
        let ca_der = cert.der().clone();
        Self { issuer: Issuer::new(params, key), ca_der, ca_file, _dir: dir }
    }

    /// A server configuration presenting a certificate for `names` (DNS
    /// names or IP addresses), signed by this CA.
    pub fn server_config(&self, names: &[&str]) -> Arc<rustls::ServerConfig> {
        let key = KeyPair::generate().expect("generate the server key");
        let params =
            CertificateParams::new(names.iter().map(|n| n.to_string()).collect::<Vec<_>>()).expect("server params");
        let cert = params.signed_by(&key, &self.issuer).expect("sign the server certificate");
        let chain = vec![cert.der().clone(), self.ca_der.clone()];
        let key = PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(key.serialize_der()));
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let config = rustls::ServerConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .expect("TLS versions")
            .with_no_client_auth()
            .with_single_cert(chain, key)
            .expect("a valid certificate and key");
        Arc::new(config)
    }
}

impl Default for TestCa {
    fn default() -> Self {
        Self::new()
    }
}
