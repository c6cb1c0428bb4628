-- Compliance searches by the rule that decided (console and `audit query --rule`).
CREATE INDEX audit_events_rule ON audit_events (rule_id, id);
