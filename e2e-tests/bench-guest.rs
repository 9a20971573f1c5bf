// The waPC entry points every benchmark module has alike (`include!`d by floor-policy and
// baseline-policy, which are separate crates): `validate` is the including module's own,
// any settings are valid, and the protocol version is the SDK's. The including module
// brings the SDK's waPC prelude and `validate`.

#[unsafe(no_mangle)]
pub extern "C" fn wapc_init() {
    register_function("validate", validate);
    register_function("validate_settings", validate_settings);
    register_function(
        "protocol_version",
        kubewarden_policy_sdk::protocol_version_guest,
    );
}

fn validate_settings(_payload: &[u8]) -> CallResult {
    let valid = kubewarden_policy_sdk::settings::SettingsValidationResponse {
        valid: true,
        message: None,
    };
    Ok(serde_json::to_vec(&valid)?)
}
