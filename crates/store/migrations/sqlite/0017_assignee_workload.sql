-- The cases each staff member holds, by status, across tenants: the assignees list shows whoever
-- assigns cases how much open work each person has.
CREATE INDEX cases_assignee_status ON cases(assignee_id, status);
