-- Groups in tokens and application assignment (issue 18).
-- groups_claim: what the `groups` claim of ID tokens and userinfo holds (none, ids, names).
-- assignment_required: only assigned users (directly or through a group) get codes and tokens.
ALTER TABLE applications ADD COLUMN groups_claim TEXT NOT NULL DEFAULT 'none'
    CHECK (groups_claim IN ('none', 'ids', 'names'));
ALTER TABLE applications ADD COLUMN assignment_required BOOLEAN NOT NULL DEFAULT FALSE;

-- Who an application is assigned to: exactly one of a user and a group per row. Deleting the
-- application, the user or the group removes the assignment.
CREATE TABLE app_assignments (
    client_id  TEXT    NOT NULL REFERENCES applications (client_id) ON DELETE CASCADE,
    user_id    TEXT             REFERENCES users (id) ON DELETE CASCADE,
    group_id   TEXT             REFERENCES groups (id) ON DELETE CASCADE,
    created_at BIGINT  NOT NULL,
    CHECK ((user_id IS NULL) <> (group_id IS NULL))
);

CREATE UNIQUE INDEX app_assignments_of_user ON app_assignments (client_id, user_id)
    WHERE user_id IS NOT NULL;
CREATE UNIQUE INDEX app_assignments_of_group ON app_assignments (client_id, group_id)
    WHERE group_id IS NOT NULL;
CREATE INDEX app_assignments_by_user ON app_assignments (user_id);
CREATE INDEX app_assignments_by_group ON app_assignments (group_id);
