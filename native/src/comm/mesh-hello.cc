#include "mesh-hello.h"

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/rand.h>

#include <array>
#include <cstring>
#include <vector>

#include "wait.h"

namespace tessera::comm {
namespace {

constexpr uint32_t kMagic = 0x32485354;  // "TSH2" little-endian; the old clear-token greeting was "TSMH"
constexpr uint32_t kSealedMagic = 0x32535354;  // "TSS2": the same greeting, then sealed frames
constexpr size_t kNonceBytes = 32;
constexpr size_t kProofBytes = 32;
constexpr size_t kOfferBytes = 4 + 4 + kNonceBytes;
constexpr size_t kAnswerBytes = 4 + 4 + kNonceBytes + kProofBytes;
constexpr char kListenerTag[] = "tessera data hello: listener";
constexpr char kDialerTag[] = "tessera data hello: dialer";
constexpr char kKeysTag[] = "tessera data keys";
constexpr char kDialerToListener[] = "dialer to listener";
constexpr char kListenerToDialer[] = "listener to dialer";

using Nonce = std::array<uint8_t, kNonceBytes>;
using Proof = std::array<uint8_t, kProofBytes>;

void putLittle(uint8_t* at, uint64_t value, size_t bytes) {
  for (size_t i = 0; i < bytes; i++) at[i] = static_cast<uint8_t>(value >> (8 * i));
}

uint32_t getLittle32(const uint8_t* at) {
  return static_cast<uint32_t>(at[0]) | static_cast<uint32_t>(at[1]) << 8 | static_cast<uint32_t>(at[2]) << 16 | static_cast<uint32_t>(at[3]) << 24;
}

Nonce freshNonce() {
  Nonce nonce;
  if (RAND_bytes(nonce.data(), static_cast<int>(nonce.size())) != 1) throw CommError("TESSERA_ERR_INTERNAL", "no random bytes for a data-socket greeting");
  return nonce;
}

uint32_t magicOf(const HelloKeys& keys) { return keys.sealed ? kSealedMagic : kMagic; }

/** tag | generation | mesh size | dialer | listener | dialer nonce | listener nonce. */
std::vector<uint8_t> boundMessage(const char* tag, const HelloKeys& keys, int dialer, int listener, const Nonce& dialerNonce, const Nonce& listenerNonce) {
  std::vector<uint8_t> message(tag, tag + std::strlen(tag));
  uint8_t numbers[8 + 4 + 4 + 4];
  putLittle(numbers, keys.generation, 8);
  putLittle(numbers + 8, static_cast<uint32_t>(keys.size), 4);
  putLittle(numbers + 12, static_cast<uint32_t>(dialer), 4);
  putLittle(numbers + 16, static_cast<uint32_t>(listener), 4);
  message.insert(message.end(), numbers, numbers + sizeof(numbers));
  message.insert(message.end(), dialerNonce.begin(), dialerNonce.end());
  message.insert(message.end(), listenerNonce.begin(), listenerNonce.end());
  return message;
}

Proof hmac(const void* key, size_t keyLength, const std::vector<uint8_t>& message) {
  Proof out;
  unsigned int length = 0;
  const uint8_t* made = HMAC(EVP_sha256(), key, static_cast<int>(keyLength), message.data(), message.size(), out.data(), &length);
  if (!made || length != kProofBytes) throw CommError("TESSERA_ERR_INTERNAL", "HMAC-SHA256 failed for a data-socket greeting");
  return out;
}

/** One side's proof of the token, bound to the direction, the mesh, both ranks and both nonces. */
Proof proofOf(const char* tag, const HelloKeys& keys, int dialer, int listener, const Nonce& dialerNonce, const Nonce& listenerNonce) {
  return hmac(keys.token.data(), keys.token.size(), boundMessage(tag, keys, dialer, listener, dialerNonce, listenerNonce));
}

/** One direction's key: an expand block of HKDF-SHA256 over the link's pseudo-random key. */
std::array<uint8_t, 32> expand(const Proof& prk, const char* label) {
  std::vector<uint8_t> info(label, label + std::strlen(label));
  info.push_back(1);
  const Proof key = hmac(prk.data(), prk.size(), info);
  std::array<uint8_t, 32> out;
  std::memcpy(out.data(), key.data(), out.size());
  return out;
}

/** The link's keys as `dialing` sees them (its send key is the dialer-to-listener one). */
LinkKeys linkKeys(const HelloKeys& keys, int dialer, int listener, const Nonce& dialerNonce, const Nonce& listenerNonce, bool dialing) {
  const Proof prk = proofOf(kKeysTag, keys, dialer, listener, dialerNonce, listenerNonce);
  const auto forward = expand(prk, kDialerToListener);
  const auto backward = expand(prk, kListenerToDialer);
  return dialing ? LinkKeys{forward, backward} : LinkKeys{backward, forward};
}

bool sameProof(const uint8_t* given, const Proof& wanted) { return CRYPTO_memcmp(given, wanted.data(), kProofBytes) == 0; }

}  // namespace

void dialHello(const HelloChannel& channel, const HelloKeys& keys, int rank, int peer, LinkKeys& derived) {
  const Nonce mine = freshNonce();
  uint8_t offer[kOfferBytes];
  putLittle(offer, magicOf(keys), 4);
  putLittle(offer + 4, static_cast<uint32_t>(rank), 4);
  std::memcpy(offer + 8, mine.data(), kNonceBytes);
  channel.send(offer, sizeof(offer));
  uint8_t answer[kAnswerBytes];
  channel.receive(answer, sizeof(answer));
  Nonce theirs;
  std::memcpy(theirs.data(), answer + 8, kNonceBytes);
  const bool proven = getLittle32(answer) == magicOf(keys) && getLittle32(answer + 4) == static_cast<uint32_t>(peer) && sameProof(answer + 8 + kNonceBytes, proofOf(kListenerTag, keys, rank, peer, mine, theirs));
  if (!proven) throw CommError("TESSERA_ERR_JOIN_REFUSED", "the data socket of rank " + std::to_string(peer) + " did not prove this generation's mesh token (not a rank of this mesh, or another generation)");
  const Proof proof = proofOf(kDialerTag, keys, rank, peer, mine, theirs);
  channel.send(proof.data(), proof.size());
  if (keys.sealed) derived = linkKeys(keys, rank, peer, mine, theirs, true);
}

int acceptHello(const HelloChannel& channel, const HelloKeys& keys, int rank, std::string& why, LinkKeys& derived) {
  uint8_t offer[kOfferBytes];
  channel.receive(offer, sizeof(offer));
  const uint32_t dialer = getLittle32(offer + 4);
  const uint32_t magic = getLittle32(offer);
  if (magic == (keys.sealed ? kMagic : kSealedMagic)) {
    why = std::string("a greeting for ") + (keys.sealed ? "clear" : "sealed") + " data frames, and this rank's are " + (keys.sealed ? "sealed" : "clear") + " (set TESSERA_SEAL_DATA alike on every rank)";
    return -1;
  }
  if (magic != magicOf(keys)) {
    why = "not a greeting of this protocol (an old clear-token greeting, or a stranger)";
    return -1;
  }
  if (dialer <= static_cast<uint32_t>(rank) || dialer >= static_cast<uint32_t>(keys.size)) {
    why = "a greeting from rank " + std::to_string(dialer) + ", which does not dial rank " + std::to_string(rank) + " in a mesh of " + std::to_string(keys.size);
    return -1;
  }
  Nonce theirs;
  std::memcpy(theirs.data(), offer + 8, kNonceBytes);
  const Nonce mine = freshNonce();
  const Proof proof = proofOf(kListenerTag, keys, static_cast<int>(dialer), rank, theirs, mine);
  uint8_t answer[kAnswerBytes];
  putLittle(answer, magicOf(keys), 4);
  putLittle(answer + 4, static_cast<uint32_t>(rank), 4);
  std::memcpy(answer + 8, mine.data(), kNonceBytes);
  std::memcpy(answer + 8 + kNonceBytes, proof.data(), kProofBytes);
  channel.send(answer, sizeof(answer));
  uint8_t given[kProofBytes];
  channel.receive(given, sizeof(given));
  if (!sameProof(given, proofOf(kDialerTag, keys, static_cast<int>(dialer), rank, theirs, mine))) {
    why = "a wrong proof of the mesh token from a dialer claiming rank " + std::to_string(dialer) + " (a wrong token, another generation, or a replayed greeting)";
    return -1;
  }
  if (keys.sealed) derived = linkKeys(keys, static_cast<int>(dialer), rank, theirs, mine, false);
  return static_cast<int>(dialer);
}

}  // namespace tessera::comm
