//! The rule parser and the rule set builder on any text.
//!
//! Each rule that parses must print (`Display`) as text that parses back
//! to the same rule, as the parser promises; the whole text then goes
//! through `RuleSet::build` (variables, options, matchers), whose errors
//! must name the file and line.
#![no_main]

use std::collections::BTreeMap;

use backflow::detect::rules::addr::Vars;
use backflow::detect::rules::parser::split_rules;
use backflow::detect::rules::{RuleSet, Sources, parse_rule};
use backflow::policy::Cidr;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|input: &[u8]| {
    let Ok(text) = std::str::from_utf8(input) else {
        return;
    };
    for rt in split_rules(text) {
        if let Ok(rule) = parse_rule(&rt.text) {
            let printed = rule.to_string();
            match parse_rule(&printed) {
                Ok(again) => assert_eq!(again, rule, "{printed}"),
                Err(e) => panic!("{printed:?} does not parse back: {e:?}"),
            }
        }
    }
    let home = [Cidr::parse("10.0.0.0/8").expect("cidr")];
    let sources = Sources {
        rule_files: vec![("fuzz.rules".to_string(), text.to_string())],
        ..Sources::default()
    };
    let set = RuleSet::build(&sources, &Vars::new(&home, &BTreeMap::new()), 64);
    for e in &set.report().errors {
        let msg = e.to_string();
        assert!(msg.starts_with("fuzz.rules:"), "{msg}");
    }
});
