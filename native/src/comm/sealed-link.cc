#include "sealed-link.h"

#include <errno.h>
#include <openssl/evp.h>
#include <sys/socket.h>

#include <algorithm>
#include <cstdio>
#include <cstring>
#include <string>

#include "wait.h"

#ifndef MSG_NOSIGNAL
#define MSG_NOSIGNAL 0
#endif

namespace tessera::comm {
namespace {

constexpr size_t kHeaderBytes = 4;
constexpr size_t kTagBytes = 16;
constexpr size_t kNonceBytes = 12;
constexpr size_t kMaxRecord = kHeaderBytes + SealedLink::kRecordBytes + kTagBytes;

void nonceOf(uint64_t counter, uint8_t* nonce) {
  std::memset(nonce, 0, 4);
  for (size_t i = 0; i < 8; i++) nonce[4 + i] = static_cast<uint8_t>(counter >> (8 * i));
}

uint32_t lengthAt(const uint8_t* at) {
  return static_cast<uint32_t>(at[0]) | static_cast<uint32_t>(at[1]) << 8 | static_cast<uint32_t>(at[2]) << 16 | static_cast<uint32_t>(at[3]) << 24;
}

/** A GCM context holding `key` (its schedule is kept; each record only sets its nonce). */
EVP_CIPHER_CTX* keyed(const std::array<uint8_t, 32>& key, int encrypt) {
  EVP_CIPHER_CTX* context = EVP_CIPHER_CTX_new();
  const bool ok = context && EVP_CipherInit_ex(context, EVP_aes_256_gcm(), nullptr, nullptr, nullptr, encrypt) == 1 &&
                  EVP_CIPHER_CTX_ctrl(context, EVP_CTRL_GCM_SET_IVLEN, kNonceBytes, nullptr) == 1 &&
                  EVP_CipherInit_ex(context, nullptr, nullptr, key.data(), nullptr, encrypt) == 1;
  if (!ok) {
    EVP_CIPHER_CTX_free(context);
    throw CommError("TESSERA_ERR_INTERNAL", "AES-256-GCM is not available to seal a data link");
  }
  return context;
}

}  // namespace

SealedLink::SealedLink(const LinkKeys& keys, int rank, int peer)
    : rank_(rank), peer_(peer), sealer_(keyed(keys.send, 1)), opener_(keyed(keys.receive, 0)), out_(kMaxRecord), in_(2 * kMaxRecord), plain_(kRecordBytes) {}

SealedLink::~SealedLink() {
  EVP_CIPHER_CTX_free(sealer_);
  EVP_CIPHER_CTX_free(opener_);
}

void SealedLink::refuse(int fd, const char* why) {
  std::fprintf(stderr, "tessera: rank %d dropped its data connection with rank %d: TESSERA_ERR_PROTOCOL (%s)\n", rank_, peer_, why);
  // Shut at once: the peer's waits see the link closed and end RANK_LOST; nothing more is read from it.
  ::shutdown(fd, SHUT_RDWR);
  throw CommError("TESSERA_ERR_PROTOCOL", "rank " + std::to_string(peer_) + "'s data connection carried " + why + "; the connection was dropped (someone on the path between the ranks, or a broken link)");
}

void SealedLink::seal(const iovec* parts, int count, size_t skip, size_t length) {
  if (sent_ == UINT64_MAX) throw CommError("TESSERA_ERR_INTERNAL", "a data link sealed 2^64 records; its nonces are spent");
  uint8_t nonce[kNonceBytes];
  nonceOf(sent_++, nonce);
  uint8_t* record = out_.data();
  for (size_t i = 0; i < 4; i++) record[i] = static_cast<uint8_t>(length >> (8 * i));
  int n = 0;
  bool ok = EVP_EncryptInit_ex(sealer_, nullptr, nullptr, nullptr, nonce) == 1 && EVP_EncryptUpdate(sealer_, nullptr, &n, record, kHeaderBytes) == 1;
  size_t written = kHeaderBytes;
  size_t need = length;
  for (int i = 0; ok && i < count && need > 0; i++) {
    if (skip >= parts[i].iov_len) {
      skip -= parts[i].iov_len;
      continue;
    }
    const size_t take = std::min(parts[i].iov_len - skip, need);
    ok = EVP_EncryptUpdate(sealer_, record + written, &n, static_cast<const uint8_t*>(parts[i].iov_base) + skip, static_cast<int>(take)) == 1;
    written += static_cast<size_t>(n);
    need -= take;
    skip = 0;
  }
  ok = ok && need == 0 && EVP_EncryptFinal_ex(sealer_, record + written, &n) == 1;
  written += static_cast<size_t>(n);
  ok = ok && written == kHeaderBytes + length && EVP_CIPHER_CTX_ctrl(sealer_, EVP_CTRL_GCM_GET_TAG, kTagBytes, record + written) == 1;
  if (!ok) throw CommError("TESSERA_ERR_INTERNAL", "AES-256-GCM failed to seal a data record");
  outSize_ = written + kTagBytes;
  outSent_ = 0;
  outPlain_ = length;
}

size_t SealedLink::trySend(int fd, const iovec* parts, int count) {
  size_t total = 0;
  for (int i = 0; i < count; i++) total += parts[i].iov_len;
  if (outSize_ != 0 && outPlain_ > total) throw CommError("TESSERA_ERR_INTERNAL", "a data link was offered other bytes than the record it is writing");
  size_t accepted = 0;
  for (;;) {
    if (outSize_ == 0) {
      if (accepted == total) return accepted;
      seal(parts, count, accepted, std::min(total - accepted, kRecordBytes));
    }
    const ssize_t n = send(fd, out_.data() + outSent_, outSize_ - outSent_, MSG_NOSIGNAL | MSG_DONTWAIT);
    if (n < 0) {
      if (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR) return accepted;
      throwRankLost("rank " + std::to_string(peer_) + "'s data connection failed (" + std::strerror(errno) + ")");
    }
    outSent_ += static_cast<size_t>(n);
    if (outSent_ < outSize_) continue;
    accepted += outPlain_;
    outSize_ = 0;
  }
}

void SealedLink::open(size_t length, uint8_t* into, int fd) {
  uint8_t nonce[kNonceBytes];
  nonceOf(received_++, nonce);
  uint8_t* record = in_.data() + inBegin_;
  int n = 0;
  const bool ok = EVP_DecryptInit_ex(opener_, nullptr, nullptr, nullptr, nonce) == 1 && EVP_DecryptUpdate(opener_, nullptr, &n, record, kHeaderBytes) == 1 &&
                  EVP_DecryptUpdate(opener_, into, &n, record + kHeaderBytes, static_cast<int>(length)) == 1 &&
                  EVP_CIPHER_CTX_ctrl(opener_, EVP_CTRL_GCM_SET_TAG, kTagBytes, record + kHeaderBytes + length) == 1 &&
                  EVP_DecryptFinal_ex(opener_, into + n, &n) > 0;
  // The caller's buffer may hold the forged bytes now; the collective fails, so they are never used.
  if (!ok) refuse(fd, "a record that failed authentication (changed, replayed, reordered or sealed under another key)");
}

size_t SealedLink::tryReceive(int fd, const iovec* parts, int count) {
  size_t given = 0;
  int part = 0;
  size_t at = 0;
  for (;;) {
    while (part < count && at == parts[part].iov_len) {
      part++;
      at = 0;
    }
    if (part == count) return given;
    uint8_t* into = static_cast<uint8_t*>(parts[part].iov_base) + at;
    const size_t room = parts[part].iov_len - at;
    if (plainBegin_ < plainEnd_) {
      const size_t take = std::min(plainEnd_ - plainBegin_, room);
      std::memcpy(into, plain_.data() + plainBegin_, take);
      plainBegin_ += take;
      at += take;
      given += take;
      continue;
    }
    if (inEnd_ - inBegin_ >= kHeaderBytes) {
      const size_t length = lengthAt(in_.data() + inBegin_);
      if (length == 0 || length > kRecordBytes) refuse(fd, "a record of an impossible length (its header was changed on the way)");
      if (inEnd_ - inBegin_ >= kHeaderBytes + length + kTagBytes) {
        // Straight into the caller's buffer when the record fits; else through plain_.
        if (room >= length) {
          open(length, into, fd);
          at += length;
          given += length;
        } else {
          open(length, plain_.data(), fd);
          plainBegin_ = 0;
          plainEnd_ = length;
        }
        inBegin_ += kHeaderBytes + length + kTagBytes;
        continue;
      }
    }
    if (given > 0) return given;
    // Room for a whole record from inBegin_, so a partial one always completes in place.
    if (inBegin_ == inEnd_) {
      inBegin_ = inEnd_ = 0;
    } else if (in_.size() - inBegin_ < kMaxRecord) {
      std::memmove(in_.data(), in_.data() + inBegin_, inEnd_ - inBegin_);
      inEnd_ -= inBegin_;
      inBegin_ = 0;
    }
    const ssize_t n = recv(fd, in_.data() + inEnd_, in_.size() - inEnd_, MSG_DONTWAIT);
    if (n > 0) {
      inEnd_ += static_cast<size_t>(n);
      continue;
    }
    if (n == 0) throwRankLost("rank " + std::to_string(peer_) + " closed its data connection");
    if (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR) return 0;
    throwRankLost("rank " + std::to_string(peer_) + "'s data connection failed (" + std::strerror(errno) + ")");
  }
}

}  // namespace tessera::comm
