-- Example participants for the example programme "Fördjupningsprogram i
-- att styra och leda 2020". Every person and address here is fictional
-- (example.se / example.org). Load after registrations.sql:
--   sqlite3 registrations.db < registrations.sql
--   sqlite3 registrations.db < participants.sql

BEGIN;

INSERT INTO participants(email, name, organisation, role, language, status, registered_at, updated_at) VALUES
('anna.berglund@gavle.example.se', 'Anna Berglund', 'Gävle kommun', 'kommunstyrelsens ordförande', 'sv', 'registered', '2019-11-04 09:12:00', '2019-11-04 09:12:00'),
('johan.lindqvist@regionvasterbotten.example.se', 'Johan Lindqvist', 'Region Västerbotten', 'regionråd', 'sv', 'registered', '2019-11-06T13:40:00+01:00', '2019-11-06T13:40:00+01:00'),
('maria.ekstrom@lund.example.se', 'Maria Ekström', 'Lunds kommun', 'kommunstyrelsens ordförande', 'sv', 'registered', '2019-11-12 10:05:00', '2019-11-12 10:05:00'),
('karin.hedlund@skane.example.se', 'Karin Hedlund', 'Region Skåne', 'regionstyrelsens ordförande', 'sv', 'registered', '2019-11-15T08:30:00Z', '2019-11-15T08:30:00Z'),
('per.hallberg+styraleda@umea.example.se', 'Per Hallberg', 'Umeå kommun', 'kommunalråd', 'sv', 'registered', '2019-11-20 16:22:00', '2019-11-20 16:22:00'),
('lars.ostlund@orebro.example.se', 'Lars Östlund', 'Örebro kommun', 'oppositionsråd', 'sv', 'registered', '2019-11-25 11:00:00', '2019-11-25 11:00:00'),
('sofia.nyberg@regionuppsala.example.se', 'Sofia Nyberg', 'Region Uppsala', 'regionråd', 'en', 'registered', '2019-11-28T09:45:00+01:00', '2019-11-28T09:45:00+01:00'),
('asa.granqvist@vasteras.example.se', 'Åsa Granqvist', 'Västerås stad', 'kommunstyrelsens ordförande', 'sv', 'registered', '2019-12-02 14:03:00', '2019-12-02 14:03:00'),
('mikael.sandberg@jamtland.example.se', 'Mikael Sandberg', 'Region Jämtland Härjedalen', 'oppositionsråd', 'sv', 'registered', '2019-12-09 08:15:00', '2019-12-09 08:15:00'),
('eva.lundgren@norrkoping.example.se', 'Eva Lundgren', 'Norrköpings kommun', 'kommunstyrelsens ordförande', 'sv', 'registered', '2019-12-12T17:55:00+01:00', '2019-12-12T17:55:00+01:00'),
('henrik.dahl@karlstad.example.se', 'Henrik Dahl', 'Karlstads kommun', 'kommunalråd', 'sv', 'invited', NULL, '2019-10-01 10:00:00'),
('ingrid.wallin@regiondalarna.example.se', 'Ingrid Wallin', 'Region Dalarna', 'regionråd', 'en', 'invited', NULL, '2019-10-01 10:00:00'),
('tomas.falk@vaxjo.example.se', 'Tomas Falk', 'Växjö kommun', 'oppositionsråd', 'sv', 'waitlisted', '2019-12-13 15:30:00', '2019-12-13 15:30:00'),
('helena.strand@gotland.example.se', 'Helena Strand', 'Region Gotland', 'regionstyrelsens ordförande', 'sv', 'cancelled', '2019-11-08 10:20:00', '2019-12-05 09:00:00');

-- Basic facts about each participant's municipality or region, sent with
-- the `material` message before the programme starts.
INSERT INTO attachments(email, message, path) VALUES
('anna.berglund@gavle.example.se', 'material', 'basfakta-gavle.pdf'),
('johan.lindqvist@regionvasterbotten.example.se', 'material', 'basfakta-region-vasterbotten.pdf'),
('maria.ekstrom@lund.example.se', 'material', 'basfakta-lund.pdf'),
('karin.hedlund@skane.example.se', 'material', 'basfakta-region-skane.pdf'),
('per.hallberg+styraleda@umea.example.se', 'material', 'basfakta-umea.pdf'),
('lars.ostlund@orebro.example.se', 'material', 'basfakta-orebro.pdf'),
('sofia.nyberg@regionuppsala.example.se', 'material', 'basfakta-region-uppsala.pdf'),
('asa.granqvist@vasteras.example.se', 'material', 'basfakta-vasteras.pdf'),
('mikael.sandberg@jamtland.example.se', 'material', 'basfakta-region-jamtland-harjedalen.pdf'),
('eva.lundgren@norrkoping.example.se', 'material', 'basfakta-norrkoping.pdf');

-- Sessions a participant has said they will miss: no reminders for them.
INSERT INTO absences(email, session_uid) VALUES
('karin.hedlund@skane.example.se', 'styra-leda-2020-2@example.org'),
('lars.ostlund@orebro.example.se', 'styra-leda-2020-3@example.org');

COMMIT;
