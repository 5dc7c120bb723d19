-- Creating an activation counts the user's open ones; without this index that count read every
-- activation ever made (seeding 100,000 users slowed to a crawl). PostgreSQL has had it from
-- the start (activations_by_user).
CREATE INDEX activations_by_user ON activations (user_id);
