-- Seed data of the lab's citizen portal: the notices a DR drill expects to find after a restore.
CREATE TABLE notices (
    id        serial PRIMARY KEY,
    published date NOT NULL,
    title     text NOT NULL,
    body      text NOT NULL
);
INSERT INTO notices (published, title, body) VALUES
    ('2026-11-02', 'Council meeting', 'The town council meets on 12 November at 19:00 in the main hall.'),
    ('2026-10-20', 'Waste collection', 'Green waste is collected every second Tuesday until December.'),
    ('2026-10-05', 'Opening hours', 'The citizen office is open Monday to Friday, 8:00 to 12:30.'),
    ('2026-09-14', 'Road works', 'Main Street is closed between the church and the station until 30 November.');
