#pragma once
// needle doctor's output: the human report and the one-object JSON form (--json). Pure
// formatting of a Measurement and its Diagnosis; field names are documented in docs/doctor.md.
#include <string>
#include <vector>

#include "doctor/verdict.h"

namespace needle::doctor {

// `context` carries lines about how the proxies were chosen (e.g. "config needle.toml: cluster
// app lists 127.0.0.1:3000").
std::string format_text(const Measurement& measurement, const Diagnosis& diagnosis,
                        const std::vector<std::string>& context);
std::string format_json(const Measurement& measurement, const Diagnosis& diagnosis,
                        const std::vector<std::string>& context);
// A probe or usage error (exit status 2): {"url":..., "verdict":"error", "error":..., ...}.
std::string format_error_json(const std::string& url, const std::string& error);

}  // namespace needle::doctor
