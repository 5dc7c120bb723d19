-- Authentication strengths (issue 15): an application may require one before it gets a code.
-- NULL accepts any sign-in; otherwise the strength's id (mfa, passwordlessMfa,
-- phishingResistantMfa), as the admin API spells it.
ALTER TABLE applications ADD COLUMN required_strength TEXT
    CHECK (required_strength IN ('mfa', 'passwordlessMfa', 'phishingResistantMfa'));
