// Bearer tokens with scopes (submit, worker, admin). Only a SHA-256 of each secret is stored;
// the secret is shown once, when it is created.
//
//   std::string secret = ttfb::create_token(db, "ci-bot", {"submit"});
//   auto who = ttfb::authenticate(db, secret);   // nullopt for unknown or revoked tokens
#pragma once

#include "server/store/db.hpp"

#include <optional>
#include <string>
#include <vector>

namespace ttfb {

struct TokenInfo {
  long id = 0;
  std::string name;
  std::vector<std::string> scopes;
  bool has_scope(const std::string& scope) const;
};

// Hex SHA-256 of the secret, as stored.
std::string hash_token(const std::string& secret);
// Creates a token and returns its secret ("ttfb_" + 64 hex chars of randomness).
std::string create_token(Database& db, const std::string& name, const std::vector<std::string>& scopes);
std::optional<TokenInfo> authenticate(Database& db, const std::string& secret);
// Revokes every token with that name; returns how many.
int revoke_tokens(Database& db, const std::string& name);

}  // namespace ttfb
