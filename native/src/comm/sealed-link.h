// The record layer of a native data socket whose frames leave the host
// (tcp by default): after the greeting, every byte either way travels in
// AES-256-GCM records, each sealed under its direction's key (derived in
// mesh-hello.cc from the token and both greeting nonces) with a counter
// nonce that never repeats under that key.
//
//   record  plaintext length (u32 LE, 1..kRecordBytes) | ciphertext | tag (16)
//   nonce   4 zero bytes | record counter (u64 LE), per direction from 0
//   AAD     the 4 length bytes
//
// The layer is a byte stream like the socket under it: Exchange's messages
// (8-byte length + payload) are cut into records of at most kRecordBytes, so
// a 1 MiB segment is 16 records and the receiver sums the first while later
// ones are on the wire. A record that fails authentication (a flipped bit, a
// spliced, dropped or reordered record, another key) is TESSERA_ERR_PROTOCOL:
// the connection is shut down at once (the peer's waits end RANK_LOST) and
// the collective fails instead of using the bytes.
#pragma once
#include <sys/uio.h>

#include <array>
#include <cstddef>
#include <cstdint>
#include <vector>

typedef struct evp_cipher_ctx_st EVP_CIPHER_CTX;

namespace tessera::comm {

/** A link's two directions' AES-256 keys. */
struct LinkKeys {
  std::array<uint8_t, 32> send;
  std::array<uint8_t, 32> receive;
};

class SealedLink {
 public:
  /** Largest plaintext in one record: small enough to stream a segment, large enough that a record costs one syscall per 64 KiB. */
  static constexpr size_t kRecordBytes = 64 * 1024;

  SealedLink(const LinkKeys& keys, int rank, int peer);
  ~SealedLink();
  SealedLink(const SealedLink&) = delete;
  SealedLink& operator=(const SealedLink&) = delete;

  /**
   * Seals and writes the plaintext in `parts` (the caller passes the same
   * unsent bytes again until they are accepted); returns how many plaintext
   * bytes are wholly on the wire now. A record half written stays here and
   * counts once its last byte is sent.
   */
  size_t trySend(int fd, const iovec* parts, int count);
  /** Reads, opens and copies plaintext into `parts`; returns bytes given (0 when nothing is ready). */
  size_t tryReceive(int fd, const iovec* parts, int count);

 private:
  void seal(const iovec* parts, int count, size_t skip, size_t length);
  /** Opens the record at in_[inBegin_] (complete, `length` plaintext bytes) into `into`. */
  void open(size_t length, uint8_t* into, int fd);
  [[noreturn]] void refuse(int fd, const char* why);

  int rank_;
  int peer_;
  EVP_CIPHER_CTX* sealer_;
  EVP_CIPHER_CTX* opener_;
  uint64_t sent_ = 0;
  uint64_t received_ = 0;
  /** The record being written: its bytes, how many are sent, the plaintext it covers. */
  std::vector<uint8_t> out_;
  /** 0 when no record is being written. */
  size_t outSize_ = 0;
  size_t outSent_ = 0;
  size_t outPlain_ = 0;
  /** Raw bytes read and not yet opened: in_[inBegin_, inEnd_). */
  std::vector<uint8_t> in_;
  size_t inBegin_ = 0;
  size_t inEnd_ = 0;
  /** Opened plaintext not yet given to the caller: plain_[plainBegin_, plainEnd_). */
  std::vector<uint8_t> plain_;
  size_t plainBegin_ = 0;
  size_t plainEnd_ = 0;
};

}  // namespace tessera::comm
