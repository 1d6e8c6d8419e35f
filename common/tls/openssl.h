// OpenSSL plumbing shared by the pp::tls sources (and their tests): owning handles, the one place
// OpenSSL's error queue becomes a pp::Error, and PEM conversion.
//
// Every OpenSSL object lives in a std::unique_ptr with its free function as deleter from the moment
// it is created. PEM parsing never prompts for a passphrase (an encrypted key is an error), and no
// message built here contains key material: OpenSSL's error strings name the failure, not the data.
//
// Threading: free functions, no shared state. OpenSSL's error queue is per thread; each helper
// drains what it reports, so a later failure never carries a stale error.
#pragma once

#include <openssl/bio.h>
#include <openssl/bn.h>
#include <openssl/evp.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>

#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "common/base/error.h"
#include "common/base/handle.h"

namespace pp::tls {

using UniqueAsn1Integer = CHandle<ASN1_INTEGER, ASN1_INTEGER_free>;
using UniqueAsn1Time = CHandle<ASN1_TIME, ASN1_TIME_free>;
using UniqueBignum = CHandle<BIGNUM, BN_free>;
using UniqueBio = CHandle<BIO, BIO_free_all>;
using UniqueEvpPkey = CHandle<EVP_PKEY, EVP_PKEY_free>;
using UniqueEvpPkeyCtx = CHandle<EVP_PKEY_CTX, EVP_PKEY_CTX_free>;
using UniqueGeneralNames = CHandle<GENERAL_NAMES, GENERAL_NAMES_free>;
using UniqueSslCtx = CHandle<SSL_CTX, SSL_CTX_free>;
using UniqueX509 = CHandle<X509, X509_free>;
using UniqueX509Extension = CHandle<X509_EXTENSION, X509_EXTENSION_free>;
using UniqueX509Name = CHandle<X509_NAME, X509_NAME_free>;
using UniqueX509Store = CHandle<X509_STORE, X509_STORE_free>;
using UniqueX509StoreCtx = CHandle<X509_STORE_CTX, X509_STORE_CTX_free>;

// "<what>: <OpenSSL's queued errors, oldest first, '; '-separated>" (or "<what>: unknown OpenSSL
// error" when the queue is empty). Drains the calling thread's error queue.
Error OpenSslError(Code code, std::string_view what);

// Certificates in a PEM bundle, in order. INVALID_ARGUMENT naming `what` when the text holds none
// or a block does not parse.
Result<std::vector<UniqueX509>> ParseCertificates(std::string_view pem, std::string_view what);

// The first certificate of a PEM bundle.
Result<UniqueX509> ParseCertificate(std::string_view pem, std::string_view what);

// A private key in PEM (PKCS#8 or traditional). An encrypted key fails instead of prompting.
Result<UniqueEvpPkey> ParsePrivateKey(std::string_view pem, std::string_view what);

Result<std::string> CertificateToPem(X509* cert);

// PKCS#8 ("BEGIN PRIVATE KEY"), unencrypted.
Result<std::string> PrivateKeyToPem(EVP_PKEY* key);

}  // namespace pp::tls
