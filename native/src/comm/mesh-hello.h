// The greeting on a native data socket: a challenge-response over the
// generation's mesh token, so the token never crosses the wire and a
// recorded greeting is worthless later.
//
//   dialer → listener  offer   magic "TSH2" | dialer rank | dialer nonce (32)
//   listener → dialer  answer  magic "TSH2" | listener rank | listener nonce (32) | listener proof (32)
//   dialer → listener  proof   dialer proof (32)
//
// A proof is HMAC-SHA256(token, direction tag | generation | mesh size |
// dialer rank | listener rank | dialer nonce | listener nonce), integers
// little-endian, compared in constant time. Each side's fresh nonce makes a
// replayed offer or proof fail; the direction tags keep one side's proof
// from being reflected back as the other's.
//
// A sealed link (tcp by default; sealed-link.h) greets with magic "TSS2"
// instead, so two ranks that disagree about sealing are told so, and both
// sides then derive the link's keys: prk = HMAC-SHA256(token, "tessera data
// keys" | the proof's numbers | both nonces), and one key per direction,
// HMAC-SHA256(prk, "dialer to listener" | 1) and HMAC-SHA256(prk, "listener
// to dialer" | 1) (HKDF's extract and one expand block). Fresh nonces make
// every connection's keys new, so counter nonces restart safely. The HMAC, the nonces and the
// comparison are OpenSSL's, the copy Node itself carries (its headers come
// with node-gyp's, its symbols from the running node), so the addon needs no
// system OpenSSL.
#pragma once
#include <cstddef>
#include <cstdint>
#include <functional>
#include <string>

#include "sealed-link.h"

namespace tessera::comm {

/** Moves exactly `length` bytes each way on one connection; throws CommError when it cannot (closed, timed out). */
struct HelloChannel {
  std::function<void(const uint8_t* bytes, size_t length)> send;
  std::function<void(uint8_t* bytes, size_t length)> receive;
};

/** What both ends of a link must agree on. */
struct HelloKeys {
  std::string token;
  uint64_t generation;
  int size;
  /** Whether the link's frames are sealed after the greeting (sealed-link.h). */
  bool sealed = false;
};

/**
 * The dialing rank's side: sends its offer, checks the listener is rank
 * `peer` holding the token, then proves it holds it too. Throws CommError
 * TESSERA_ERR_JOIN_REFUSED when the listener cannot prove it. Sets
 * `derived` to the link's keys when `keys.sealed`.
 */
void dialHello(const HelloChannel& channel, const HelloKeys& keys, int rank, int peer, LinkKeys& derived);

/**
 * The listening rank's side: reads an offer from a rank above `rank`,
 * answers it and checks the dialer's proof. Returns the dialer's rank, or
 * -1 with `why` set when the offer or proof is wrong (the caller drops the
 * connection and logs `why`). Sets `derived` as dialHello does.
 */
int acceptHello(const HelloChannel& channel, const HelloKeys& keys, int rank, std::string& why, LinkKeys& derived);

}  // namespace tessera::comm
