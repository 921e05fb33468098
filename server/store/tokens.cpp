#include "server/store/tokens.hpp"

#include "common/errors.hpp"
#include "common/text.hpp"

#include <openssl/rand.h>

#include <algorithm>
#include <stdexcept>

namespace ttfb {
namespace {

constexpr const char* kInsertToken = "INSERT INTO tokens (name, token_hash, scopes) VALUES ($1, $2, $3::text[])";
constexpr const char* kSelectToken =
    "SELECT id, name, array_to_string(scopes, ',') FROM tokens WHERE token_hash = $1 AND revoked_at IS NULL";
constexpr const char* kRevokeTokens = "UPDATE tokens SET revoked_at = now() WHERE name = $1 AND revoked_at IS NULL";

}  // namespace

bool TokenInfo::has_scope(const std::string& scope) const {
  return std::find(scopes.begin(), scopes.end(), scope) != scopes.end();
}

std::string hash_token(const std::string& secret) { return sha256_hex(secret); }

std::string create_token(Database& db, const std::string& name, const std::vector<std::string>& scopes) {
  for (const auto& s : scopes) {
    if (s != "submit" && s != "worker" && s != "admin")
      throw ApiError(ErrorCode::invalid_argument, "unknown scope '" + s + "' (scopes are submit, worker, admin)");
  }
  if (scopes.empty()) throw ApiError(ErrorCode::invalid_argument, "a token needs at least one scope");
  unsigned char raw[32];
  if (RAND_bytes(raw, sizeof raw) != 1) throw std::runtime_error("no randomness for a token");
  std::string secret = "ttfb_" + to_hex(raw, sizeof raw);
  std::string array = "{";
  for (std::size_t i = 0; i < scopes.size(); ++i) array += (i ? "," : "") + scopes[i];
  array += "}";
  db.transact([&](pqxx::work& tx) { tx.exec_params(kInsertToken, name, hash_token(secret), array); });
  return secret;
}

std::optional<TokenInfo> authenticate(Database& db, const std::string& secret) {
  if (secret.empty()) return std::nullopt;
  return db.transact([&](pqxx::work& tx) -> std::optional<TokenInfo> {
    auto r = tx.exec_params(kSelectToken, hash_token(secret));
    if (r.empty()) return std::nullopt;
    TokenInfo t;
    t.id = r[0][0].as<long>();
    t.name = r[0][1].as<std::string>();
    std::string scopes = r[0][2].as<std::string>();
    std::size_t start = 0;
    while (start <= scopes.size()) {
      auto comma = scopes.find(',', start);
      if (comma == std::string::npos) comma = scopes.size();
      if (comma > start) t.scopes.push_back(scopes.substr(start, comma - start));
      start = comma + 1;
    }
    return t;
  });
}

int revoke_tokens(Database& db, const std::string& name) {
  return db.transact([&](pqxx::work& tx) { return static_cast<int>(tx.exec_params(kRevokeTokens, name).affected_rows()); });
}

}  // namespace ttfb
