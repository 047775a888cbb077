#include "config/tls_section.h"

#include <algorithm>
#include <string_view>

#include <fmt/format.h>

#include "base/duration.h"
#include "tls/client_tls_context.h"
#include "tls/server_tls_context.h"

namespace needle::config {
namespace {

// The keys of one TLS table, read by name; a key nobody asked for is reported.
class TlsTableReader {
 public:
  TlsTableReader(TlsSectionContext ctx, std::string prefix, const toml::table& table)
      : ctx_(ctx), prefix_(std::move(prefix)), table_(table) {}

  std::string key(std::string_view name) const { return fmt::format("{}.{}", prefix_, name); }

  void error_at(const toml::node& node, const std::string& key, std::string message) {
    const auto& where = node.source();
    ctx_.errors.push_back(ConfigError{ctx_.file, static_cast<int>(where.begin.line),
                                      static_cast<int>(where.begin.column), key,
                                      std::move(message)});
  }
  void record(const std::string& key, const toml::node& node) {
    ctx_.places.add(key, static_cast<int>(node.source().begin.line),
                    static_cast<int>(node.source().begin.column));
  }

  const toml::node* take(std::string_view name) {
    known_.emplace_back(name);
    const toml::node* node = table_.get(name);
    if (node) record(key(name), *node);
    return node;
  }

  void string(std::string_view name, std::string& out) {
    if (const toml::node* node = take(name)) read_string(key(name), *node, out);
  }
  bool read_string(const std::string& key, const toml::node& node, std::string& out) {
    if (!node.is_string()) {
      error_at(node, key, "expected a string");
      return false;
    }
    out = *node.value<std::string>();
    return true;
  }

  void boolean(std::string_view name, bool& out) {
    const toml::node* node = take(name);
    if (!node) return;
    if (node->is_boolean()) {
      out = *node->value<bool>();
    } else {
      error_at(*node, key(name), "expected true or false");
    }
  }

  void version(std::string_view name, tls::TlsVersion& out) {
    const toml::node* node = take(name);
    if (!node) return;
    std::string text;
    if (!read_string(key(name), *node, text)) return;
    if (auto parsed = tls::parse_tls_version(text)) {
      out = *parsed;
    } else {
      error_at(*node, key(name),
               fmt::format(R"("{}" is not a TLS version; write "1.2" or "1.3" (TLS 1.0 and 1.1 )"
                           "are never offered: RFC 8996)",
                           text));
    }
  }

  void duration(std::string_view name, Millis& out) {
    const toml::node* node = take(name);
    if (!node) return;
    std::string text;
    if (!read_string(key(name), *node, text)) return;
    if (auto parsed = parse_duration(text); parsed && *parsed > Millis(0)) {
      out = *parsed;
    } else {
      error_at(*node, key(name),
               fmt::format(R"("{}" is not a positive duration like "10s")", text));
    }
  }

  void strings(std::string_view name, std::vector<std::string>& out) {
    const toml::node* node = take(name);
    if (!node) return;
    const toml::array* items = node->as_array();
    if (!items) {
      error_at(*node, key(name), R"(expected an array of strings such as ["http/1.1"])");
      return;
    }
    out.clear();
    for (size_t i = 0; i < items->size(); ++i) {
      std::string value;
      if (read_string(fmt::format("{}[{}]", key(name), i), (*items)[i], value)) {
        out.push_back(std::move(value));
      }
    }
  }

  void certificates(std::vector<tls::CertificateFiles>& out) {
    const toml::node* node = take("certificates");
    if (!node) return;
    const toml::array* items = node->as_array();
    if (!items) {
      error_at(
          *node, key("certificates"),
          R"(expected an array such as [ { cert = "/etc/needle/api.pem", )"
          R"(key = "/etc/needle/api.key" } ])");
      return;
    }
    for (size_t i = 0; i < items->size(); ++i) {
      const std::string item_key = fmt::format("{}[{}]", key("certificates"), i);
      const toml::table* table = (*items)[i].as_table();
      if (!table) {
        error_at((*items)[i], item_key, R"(expected a table { cert = "...", key = "..." })");
        continue;
      }
      record(item_key, (*items)[i]);
      TlsTableReader pair(ctx_, item_key, *table);
      tls::CertificateFiles files;
      pair.string("cert", files.cert);
      pair.string("key", files.key);
      if (files.cert.empty() || files.key.empty()) {
        error_at((*items)[i], item_key, "each certificate needs both cert and key (PEM files)");
      }
      pair.finish();
      out.push_back(std::move(files));
    }
  }

  void finish() {
    for (const auto& [k, node] : table_) {
      const std::string name(k.str());
      if (std::find(known_.begin(), known_.end(), name) != known_.end()) continue;
      ctx_.errors.push_back(ConfigError{
          ctx_.file, static_cast<int>(k.source().begin.line),
          static_cast<int>(k.source().begin.column), key(name),
          fmt::format("unknown key '{}'; keys allowed here: {}", name, fmt::join(known_, ", "))});
    }
  }

  // A TlsError from building a context, placed on the key that named its file or setting.
  void report(const tls::TlsError& error,
              const std::vector<std::pair<std::string, std::string>>& file_keys) {
    std::string at = prefix_;
    if (!error.file.empty()) {
      for (const auto& [file, file_key] : file_keys) {
        if (file == error.file) {
          at = file_key;
          break;
        }
      }
    } else if (!error.setting.empty()) {
      at = key(error.setting);
    }
    ctx_.errors.push_back(ctx_.places.error(ctx_.file, at, error.to_string()));
  }

 private:
  TlsSectionContext ctx_;
  std::string prefix_;
  const toml::table& table_;
  std::vector<std::string> known_;
};

const toml::table* as_tls_table(TlsSectionContext ctx, const std::string& key,
                                const toml::node& node) {
  if (const toml::table* table = node.as_table()) {
    ctx.places.add(key, static_cast<int>(node.source().begin.line),
                   static_cast<int>(node.source().begin.column));
    return table;
  }
  ctx.errors.push_back(
      ConfigError{ctx.file, static_cast<int>(node.source().begin.line),
                  static_cast<int>(node.source().begin.column), key,
                  fmt::format("expected a table: write [{}] on its own line", key)});
  return nullptr;
}

}  // namespace

void read_listener_tls(TlsSectionContext ctx, const std::string& key, const toml::node& node,
                       std::optional<ListenerTlsConfig>& out) {
  const toml::table* table = as_tls_table(ctx, key, node);
  if (!table) return;
  const size_t errors_before = ctx.errors.size();
  TlsTableReader r(ctx, key, *table);
  ListenerTlsConfig tls;
  r.certificates(tls.settings.certificates);
  r.version("min_version", tls.settings.min_version);
  r.string("ciphers", tls.settings.ciphers);
  r.string("ciphersuites", tls.settings.ciphersuites);
  r.strings("alpn", tls.settings.alpn);
  r.string("client_ca", tls.settings.client_ca);
  r.boolean("strict_sni", tls.settings.strict_sni);
  r.duration("handshake_timeout", tls.handshake_timeout);
  r.finish();
  if (tls.settings.certificates.empty() && ctx.errors.size() == errors_before) {
    ctx.errors.push_back(ctx.places.error(
        ctx.file, key,
        R"(missing required key 'certificates'; e.g. certificates = [ { cert = )"
        R"("/etc/needle/api.pem", key = "/etc/needle/api.key" } ])"));
  }
  if (ctx.errors.size() != errors_before) return;
  // Load every file now (decision 0007, 5): all problems at once, each on its key.
  std::vector<std::pair<std::string, std::string>> file_keys;
  for (size_t i = 0; i < tls.settings.certificates.size(); ++i) {
    const std::string item = fmt::format("{}.certificates[{}]", key, i);
    file_keys.emplace_back(tls.settings.certificates[i].cert, item + ".cert");
    file_keys.emplace_back(tls.settings.certificates[i].key, item + ".key");
  }
  file_keys.emplace_back(tls.settings.client_ca, key + ".client_ca");
  auto created = tls::ServerTlsContext::create(tls.settings, nullptr);
  for (const auto& error : created.errors) r.report(error, file_keys);
  if (created.errors.empty()) out = std::move(tls);
}

void read_cluster_tls(TlsSectionContext ctx, const std::string& key, const toml::node& node,
                      std::optional<UpstreamTlsConfig>& out) {
  const toml::table* table = as_tls_table(ctx, key, node);
  if (!table) return;
  const size_t errors_before = ctx.errors.size();
  TlsTableReader r(ctx, key, *table);
  UpstreamTlsConfig tls;
  r.string("sni", tls.settings.sni);
  r.boolean("verify", tls.settings.verify);
  r.string("ca", tls.settings.ca);
  r.string("cert", tls.settings.cert);
  r.string("key", tls.settings.key);
  r.version("min_version", tls.settings.min_version);
  r.string("ciphers", tls.settings.ciphers);
  r.string("ciphersuites", tls.settings.ciphersuites);
  r.strings("alpn", tls.settings.alpn);
  r.finish();
  if (tls.settings.cert.empty() != tls.settings.key.empty()) {
    ctx.errors.push_back(ctx.places.error(ctx.file,
                                          key + (tls.settings.cert.empty() ? ".key" : ".cert"),
                                          "a client certificate needs both cert and key"));
  }
  if (ctx.errors.size() != errors_before) return;
  const std::vector<std::pair<std::string, std::string>> file_keys = {
      {tls.settings.ca, key + ".ca"},
      {tls.settings.cert, key + ".cert"},
      {tls.settings.key, key + ".key"},
  };
  auto created = tls::ClientTlsContext::create(tls.settings);
  for (const auto& error : created.errors) r.report(error, file_keys);
  if (created.errors.empty()) out = std::move(tls);
}

}  // namespace needle::config
